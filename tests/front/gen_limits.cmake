# Writes one of the absurdly large specs of the limits tests, then checks it like an error case
# (run_golden.cmake) and removes it. The specs are megabytes, so they are generated at test time
# instead of committed; each one's golden stderr is errors/NAME.expected in the source tree.
# Usage (from a scratch directory, which gets errors/NAME.mtl):
#   cmake -DNAME=limits_... -DCHECK=mtlc -DEXPECTED_ERR=/abs/errors/NAME.expected -DEXPECTED_RC=1
#         -P gen_limits.cmake
set(SPEC errors/${NAME}.mtl)
file(MAKE_DIRECTORY errors)

set(model_head "model Huge {\n  input  x : [17]\n  target rul : real\n")
set(task_rul "  task rul {\n    head { dense(1) }\n    loss mse\n  }\n")
set(model_tail "${task_rul}}\n")

# Appends `count` copies of `text`, a thousand at a time (a 100 MB file never sits in memory).
function(append_repeated text count)
  string(REPEAT "${text}" 1000 chunk)
  math(EXPR chunks "${count} / 1000")
  math(EXPR rest "${count} % 1000")
  if(chunks GREATER 0)
    foreach(i RANGE 1 ${chunks})
      file(APPEND ${SPEC} "${chunk}")
    endforeach()
  endif()
  if(rest GREATER 0)
    string(REPEAT "${text}" ${rest} tail)
    file(APPEND ${SPEC} "${tail}")
  endif()
endfunction()

if(NAME STREQUAL "limits_file_size")
  # 100 MB of comments before a small model: refused by its size before it is read.
  file(WRITE ${SPEC} "")
  append_repeated("# a comment line of a spec far larger than any real one; mtlc refuses it unread.\n" 1250000)
  file(APPEND ${SPEC} "${model_head}  trunk { dense(8) relu }\n${model_tail}")
elseif(NAME STREQUAL "limits_layers_1m")
  # A million layers, one per line (9 MB): the file is too large.
  file(WRITE ${SPEC} "${model_head}  trunk {\n")
  append_repeated("    relu\n" 1000000)
  file(APPEND ${SPEC} "  }\n${model_tail}")
elseif(NAME STREQUAL "limits_long_line_10mb")
  # One 10 MB line of layers: the file is too large.
  file(WRITE ${SPEC} "${model_head}  trunk { ")
  append_repeated("relu " 2000000)
  file(APPEND ${SPEC} "}\n${model_tail}")
elseif(NAME STREQUAL "limits_layers_10001")
  # 10,001 layers on one 50 kB line: the parse stops at the first layer past the limit.
  file(WRITE ${SPEC} "${model_head}  trunk { ")
  append_repeated("relu " 10001)
  file(APPEND ${SPEC} "}\n${model_tail}")
elseif(NAME STREQUAL "limits_deep_residual")
  # residual { residual { ... } } 10,000 deep: the nesting limit stops it at level 65.
  file(WRITE ${SPEC} "${model_head}  trunk {\n    ")
  append_repeated("residual { " 10000)
  file(APPEND ${SPEC} "relu")
  append_repeated(" }" 10000)
  file(APPEND ${SPEC} "\n  }\n${model_tail}")
elseif(NAME STREQUAL "limits_list_items")
  # 10,001 csv input columns: the list stops at its 10,001st item.
  file(WRITE ${SPEC} "model Huge {\n  input  x : [10001]\n  target rul : real\n  data csv { inputs = (\"c\"")
  append_repeated(", \"c\"" 10000)
  file(APPEND ${SPEC} ") }\n  trunk { dense(8) relu }\n${model_tail}")
elseif(NAME STREQUAL "limits_long_line_errors")
  # Two errors far inside a 1,000,000-byte line (just under the file limit): each excerpt is a
  # window around its error, and the line is not rescanned for every diagnostic.
  file(WRITE ${SPEC} "${model_head}  trunk { dense(8)")
  append_repeated(" " 500000)
  file(APPEND ${SPEC} "rleu")
  append_repeated(" " 499000)
  file(APPEND ${SPEC} "tnah }\n${model_tail}")
elseif(NAME STREQUAL "limits_long_name")
  # A layer named by a 1,000,000-character identifier: the message quoting it is cut.
  file(WRITE ${SPEC} "${model_head}  trunk { dense(8) ")
  append_repeated("r" 1000000)
  file(APPEND ${SPEC} " }\n${model_tail}")
elseif(NAME STREQUAL "limits_selectors")
  # 1,001 parameter selectors in one group: the check of the 1,001st stops.
  file(WRITE ${SPEC} "${model_head}  trunk { dense(8) relu }\n${task_rul}  optimizer adamw {\n    group all { params = (all")
  append_repeated(", all" 1000)
  file(APPEND ${SPEC} ") }\n  }\n}\n")
else()
  message(FATAL_ERROR "gen_limits.cmake: unknown case '${NAME}'")
endif()

include(${CMAKE_CURRENT_LIST_DIR}/run_golden.cmake)
file(REMOVE ${SPEC})
