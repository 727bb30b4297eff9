# sim/embed.cmake: turns a file into a C header holding its bytes as one
# NUL-terminated array, for sim/html.c (the page's script and style).
#   cmake -DIN=FILE -DOUT=HEADER -DNAME=SYMBOL -P sim/embed.cmake
# The header is rewritten only when its content changes.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
     "/* Generated from sim/${name} by sim/embed.cmake: do not edit. */\n"
     "static const char ${NAME}[] = {\n${bytes}0};\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
