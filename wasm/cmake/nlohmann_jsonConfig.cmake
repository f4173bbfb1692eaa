# nlohmann_json for the Emscripten build (presets wasm-*, nlohmann_json_DIR points here).
#
# Debian installs the headers in the system include root (/usr/include). Handing that root to em++
# pulls glibc headers into the wasm build, so the target points at a directory of the build tree
# that holds only a `nlohmann` symlink. MANA_NLOHMANN_INCLUDE names the root that contains
# nlohmann/json.hpp (default: /usr/include).
set(MANA_NLOHMANN_INCLUDE "/usr/include" CACHE PATH "Directory that contains nlohmann/json.hpp")
if(NOT EXISTS "${MANA_NLOHMANN_INCLUDE}/nlohmann/json.hpp")
  set(nlohmann_json_FOUND FALSE)
  set(nlohmann_json_NOT_FOUND_MESSAGE
      "nlohmann/json.hpp not found under ${MANA_NLOHMANN_INCLUDE} (install nlohmann-json3-dev)")
  return()
endif()
set(_mana_nlohmann_dir "${CMAKE_BINARY_DIR}/nlohmann-only-include")
if(NOT EXISTS "${_mana_nlohmann_dir}/nlohmann")
  file(MAKE_DIRECTORY "${_mana_nlohmann_dir}")
  file(CREATE_LINK "${MANA_NLOHMANN_INCLUDE}/nlohmann" "${_mana_nlohmann_dir}/nlohmann" SYMBOLIC)
endif()
if(NOT TARGET nlohmann_json::nlohmann_json)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_mana_nlohmann_dir}"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_mana_nlohmann_dir}")
endif()
set(nlohmann_json_FOUND TRUE)
