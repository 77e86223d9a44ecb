# One helper declares every component library, so each folder is one target
# with an alias (boxwatch::<name>), explicit dependencies and the same flags.
#
#   boxwatch_cc_library(NAME core SRCS a.cc b.cc DEPS boxwatch::proto PUBLIC_DEPS ...)
#
# Include paths are rooted at the repository top, so code includes
# "core/container_number.h" and never relies on the folder it sits in.

# -Wno-restrict: GCC 12 reports false positives on std::string concatenation
# at -O3 (GCC bug 105651).
set(BOXWATCH_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter -Wno-restrict
    -Wno-missing-field-initializers)  # designated initialisers leave the rest at defaults
if(BOXWATCH_WERROR)
  list(APPEND BOXWATCH_WARNINGS -Werror)
endif()

function(boxwatch_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  if(NOT ARG_NAME OR NOT ARG_SRCS)
    message(FATAL_ERROR "boxwatch_cc_library needs NAME and SRCS")
  endif()
  set(target boxwatch_${ARG_NAME})
  add_library(${target} STATIC ${ARG_SRCS})
  add_library(boxwatch::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${target} PRIVATE ${BOXWATCH_WARNINGS})
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

# A GoogleTest executable registered with CTest under the given labels.
#   boxwatch_cc_test(NAME core_test SRCS x_test.cc DEPS boxwatch::core LABELS unit)
function(boxwatch_cc_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${BOXWATCH_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
