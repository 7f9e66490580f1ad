# vik_add_plugin(NAME <name> SOURCES <file>... [MANIFEST <manifest.toml>] [LIBS <lib>...]
#                [OUTPUT_DIR <dir>] [INSTALL_DIR <dir>])
#
# Builds lib vik-<name>.so as a MODULE library and copies its manifest beside it as
# vik-<name>.toml: a plugin directory the host can load with `--plugins <dir>`. The library links
# vik::sdk, hides every symbol but `vik_plugin_entry` (a version script), and refuses undefined
# symbols at link time (--no-undefined), so a missing library is a build error, not a load error.
#
# Defaults: MANIFEST ./manifest.toml; OUTPUT_DIR the host's plugin directory inside the vik-host
# tree, else ${CMAKE_BINARY_DIR}/plugins; INSTALL_DIR lib/vik-host/plugins (what `cmake
# --install` of the plugin's project uses).
#
# Used by vik-host's own tree and, installed, by find_package(VikHostSDK) in out-of-tree plugins.
function(vik_add_plugin)
  # Beside this file, in the source tree and when installed.
  set(version_script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/vik-plugin.map)
  cmake_parse_arguments(P "" "NAME;MANIFEST;OUTPUT_DIR;INSTALL_DIR" "SOURCES;LIBS" ${ARGN})
  if(NOT P_NAME OR NOT P_SOURCES)
    message(FATAL_ERROR "vik_add_plugin: NAME and SOURCES are required")
  endif()
  if(NOT P_OUTPUT_DIR)
    if(VIK_PLUGIN_OUTPUT_DIR)
      set(P_OUTPUT_DIR ${VIK_PLUGIN_OUTPUT_DIR})
    else()
      set(P_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins)
    endif()
  endif()
  if(NOT P_MANIFEST)
    set(P_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/manifest.toml)
  endif()
  if(NOT P_INSTALL_DIR)
    set(P_INSTALL_DIR lib/vik-host/plugins)
  endif()
  set(target vik-plugin-${P_NAME})
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE vik::sdk ${P_LIBS})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME vik-${P_NAME}
    PREFIX "lib"
    LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS ${version_script})
  target_link_options(${target} PRIVATE -Wl,--version-script=${version_script} -Wl,--no-undefined)
  # The manifest beside the library, copied again whenever it changes (not only on a relink).
  add_custom_command(OUTPUT ${P_OUTPUT_DIR}/vik-${P_NAME}.toml
    COMMAND ${CMAKE_COMMAND} -E make_directory ${P_OUTPUT_DIR}
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${P_MANIFEST} ${P_OUTPUT_DIR}/vik-${P_NAME}.toml
    DEPENDS ${P_MANIFEST})
  add_custom_target(${target}-manifest DEPENDS ${P_OUTPUT_DIR}/vik-${P_NAME}.toml)
  add_dependencies(${target} ${target}-manifest)
  # Test plugins (an OUTPUT_DIR of their own inside vik-host's tree) are not installed.
  if(NOT VIK_PLUGIN_OUTPUT_DIR OR P_OUTPUT_DIR STREQUAL VIK_PLUGIN_OUTPUT_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION ${P_INSTALL_DIR})
    install(FILES ${P_MANIFEST} DESTINATION ${P_INSTALL_DIR} RENAME vik-${P_NAME}.toml)
  endif()
endfunction()
