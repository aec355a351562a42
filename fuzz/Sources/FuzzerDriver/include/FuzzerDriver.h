#ifndef FUZZER_DRIVER_H
#define FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer's driver (`LLVMFuzzerRunDriver`, in the runtime `-sanitize=fuzzer` links) on
/// the command line with `test_one_input` as the target.
///
/// Why not libFuzzer's own `main`: SwiftPM links a Swift executable with `main` aliased to
/// `<Module>_main` (so that tests can link executable modules), so each fuzz target defines
/// that symbol and calls this.
int fuzzer_driver_run(int argc, char **argv, int (*test_one_input)(const uint8_t *data, size_t size));

#endif
