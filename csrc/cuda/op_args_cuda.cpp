// The shared argument checks, compiled into durn._C_cuda as its own object (the CPU
// and CUDA libraries are built and loaded independently).
#include "../binding/op_args.cpp"
