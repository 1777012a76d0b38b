/* tests/cuda/emu: the CUDA runtime API as the emulator provides it. */
#include "emu.h"
