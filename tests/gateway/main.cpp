// Catch2 v2 main for mana_gateway_tests (config, target policy and JWT authentication).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
