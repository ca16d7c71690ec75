# Runs the out-of-tree toy2d build EXE at tiny sizes into OUT and checks what it wrote: one CSV per data set with a
# row per algorithm and checkpoint, finite exact log Z values, and a PNG panel per checkpoint.
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${EXE} --out ${OUT} --updates 6 --every 3 --walkers 48 --holdout-walkers 24 --batch 32
                        --data-size 400 --grid 48 --correction-groups 4 --tile 48
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} failed (${rc})")
endif()
foreach(set ring moons)
  file(STRINGS ${OUT}/metrics_${set}.csv rows)
  list(LENGTH rows n)
  # header + data row + 2 algorithms x 3 checkpoints (updates 0, 3, 6)
  if(NOT n EQUAL 8)
    message(FATAL_ERROR "${OUT}/metrics_${set}.csv has ${n} lines, expected 8")
  endif()
  foreach(row ${rows})
    # exact log Z for both; the three estimates for Jarzynski
    if(row MATCHES "^${set},pcd,[0-9]+,[^,]*(nan|inf)" OR row MATCHES "^${set},jarzynski,[0-9]+,([^,]*,){3}[^,]*(nan|inf)")
      message(FATAL_ERROR "${OUT}/metrics_${set}.csv: a non-finite log Z: ${row}")
    endif()
  endforeach()
  foreach(k 000000 000003 000006)
    if(NOT EXISTS ${OUT}/panel_${set}_${k}.png)
      message(FATAL_ERROR "${OUT}/panel_${set}_${k}.png is missing")
    endif()
  endforeach()
endforeach()
