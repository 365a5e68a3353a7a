# The SMPI step skeleton (launch/sim/skeleton.c), built with SimGrid's smpicc when -DLONGVQ_SIM=ON
# (Debian: libsimgrid-dev, `launch/install-deps.sh --sim`). It compiles the reducer's layout
# (trainer/reducer_layout.c) itself: the same code as the trainer, for SMPI's mpi.h.
find_program(LONGVQ_SMPICC smpicc)
if(NOT LONGVQ_SMPICC)
  message(FATAL_ERROR "LONGVQ_SIM=ON needs smpicc (SimGrid): launch/install-deps.sh --sim")
endif()
set(LONGVQ_SKELETON ${CMAKE_BINARY_DIR}/launch/sim/skeleton)
set(LONGVQ_SKELETON_WARN -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes)
if(LONGVQ_WERROR)
  list(APPEND LONGVQ_SKELETON_WARN -Werror)
endif()
add_custom_command(OUTPUT ${LONGVQ_SKELETON}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/launch/sim
  COMMAND ${LONGVQ_SMPICC} -O2 -std=c11 -D_GNU_SOURCE ${LONGVQ_SKELETON_WARN} -I${CMAKE_SOURCE_DIR} -o ${LONGVQ_SKELETON}
          ${CMAKE_SOURCE_DIR}/launch/sim/skeleton.c ${CMAKE_SOURCE_DIR}/trainer/reducer_layout.c
  DEPENDS ${CMAKE_SOURCE_DIR}/launch/sim/skeleton.c ${CMAKE_SOURCE_DIR}/trainer/reducer_layout.c
          ${CMAKE_SOURCE_DIR}/trainer/reducer_layout.h
  COMMENT "smpicc: the SMPI step skeleton")
add_custom_target(skeleton ALL DEPENDS ${LONGVQ_SKELETON})
message(STATUS "  SMPI skeleton   : ${LONGVQ_SKELETON} (${LONGVQ_SMPICC})")
