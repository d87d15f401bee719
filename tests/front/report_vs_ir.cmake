# The report's memory total must stay within 10 % of what the trainer really allocates: the
# memory plan of the IR with backward (`--emit=grad-ir` header: parameter floats, buffer floats,
# activations N floats per sample + M fixed, kernel scratch included), plus parameter gradients
# and 2 AdamW moments. Usage (from tests/front):
#   cmake -DCHECK=mtlc -DSPEC=path -P report_vs_ir.cmake
# Assumes every parameter is trainable (true of the specs it is run on). The report counts the
# layers as written, so the plan compared is the one without last-step pruning (which only makes
# the trainer smaller: the report is an upper bound for attention blocks ending in pool(last)).
execute_process(COMMAND ${CHECK} --no-last-step-pruning --emit=grad-ir ${SPEC} RESULT_VARIABLE rc OUTPUT_VARIABLE ir ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SPEC}: --emit=grad-ir failed (${rc}): ${err}")
endif()
string(REGEX MATCH "([0-9]+) parameter floats, ([0-9]+) buffer floats, activations ([0-9]+) floats per sample \\+ ([0-9]+) fixed"
       header "${ir}")
if(NOT header)
  message(FATAL_ERROR "${SPEC}: no memory plan in the --emit=grad-ir header")
endif()
set(params ${CMAKE_MATCH_1})
set(buffers ${CMAKE_MATCH_2})
set(acts ${CMAKE_MATCH_3})
set(fixed ${CMAKE_MATCH_4})

execute_process(COMMAND ${CHECK} --report=json ${SPEC} RESULT_VARIABLE rc OUTPUT_VARIABLE json ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SPEC}: --report=json failed (${rc}): ${err}")
endif()
string(JSON batch GET "${json}" memory batch)
string(JSON reported GET "${json}" memory bytes)
string(JSON trainable GET "${json}" trainable)
if(NOT trainable EQUAL params)
  message(FATAL_ERROR "${SPEC}: frozen parameters; this check assumes none")
endif()

# params + grads + 2 moments = 4 copies, + buffers, + the acts region, all float32
math(EXPR expected "4 * (4 * ${params} + ${buffers} + ${acts} * ${batch} + ${fixed})")
math(EXPR diff "${reported} - ${expected}")
if(diff LESS 0)
  math(EXPR diff "-(${diff})")
endif()
math(EXPR limit "${expected} / 10")
message(STATUS "${SPEC}: report ${reported} bytes, IR plan ${expected} bytes (difference ${diff})")
if(diff GREATER limit)
  message(FATAL_ERROR "${SPEC}: the report's memory (${reported} bytes) is more than 10 % away from the IR's plan (${expected} bytes)")
endif()
