"""nbsweep's tests: a regular package, so that no other ``tests`` on the path (IPython puts
its extensions folder there, which has one) can shadow it."""
