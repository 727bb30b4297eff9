# sim/assets.cmake: the files sim/html.c embeds (the page of `tlsim report
# --html`), as generated headers sim/NAME.h in the build directory; the
# list goes into TLSIM_ASSETS, which tlsimcore compiles with.
set(TLSIM_ASSETS "")
foreach(asset html.js html.css)
  string(MAKE_C_IDENTIFIER ${asset} sym)
  set(out ${CMAKE_BINARY_DIR}/sim/${sym}.h)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_SOURCE_DIR}/sim/${asset}
            -DOUT=${out} -DNAME=${sym} -P ${CMAKE_SOURCE_DIR}/sim/embed.cmake
    DEPENDS ${CMAKE_SOURCE_DIR}/sim/${asset} ${CMAKE_SOURCE_DIR}/sim/embed.cmake
    COMMENT "Embedding sim/${asset}"
    VERBATIM)
  list(APPEND TLSIM_ASSETS ${out})
endforeach()
