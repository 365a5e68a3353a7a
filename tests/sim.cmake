# Projections on a simulated cluster (launch/project.py, launch/sim/; docs/scaling.md#projections).
#   sim   the tiny model's profile, its bytes against a real 4-rank training and the skeleton, 4- and
#         64-node projections on both networks, the properties (bandwidth monotone, infinitely fast
#         network hides everything, sampled ring, SMPI collectives, alpha-beta), bad input
# Registered only with -DLONGVQ_SIM=ON (launch/test.sh installs SimGrid and sets it): then it must pass.
if(LONGVQ_SIM)
  lv_script_test(sim sim.sh sim)
  set_tests_properties(sim PROPERTIES RUN_SERIAL TRUE TIMEOUT 300)
endif()
