"""Where a netx network runs: the exact mode, the emulator, Lava; one registry picks."""
