"""Tools around the station: the launcher, the pile simulator, and the test rig."""
