# cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed_file.cmake
# Writes `const unsigned char NAME[]` and `const unsigned long NAME_size` holding IN's bytes.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR size "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* generated from ${IN}; do not edit */\n"
  "const unsigned char ${NAME}[] = {\n${bytes}\n};\n"
  "const unsigned long ${NAME}_size = ${size};\n")
