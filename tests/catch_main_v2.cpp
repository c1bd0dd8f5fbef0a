// Catch2 v2 has no Catch2WithMain target: this file provides main() there.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
