/* tests/cuda/emu: the half type and conversions as the emulator provides them. */
#include "emu.h"
