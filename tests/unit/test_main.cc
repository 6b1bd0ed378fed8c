#include <csignal>

#include <gtest/gtest.h>

// The unit tests run in a process set up as connreg's main sets up its own: SIGPIPE ignored, so a
// peer closing its socket fails one write (the fake servers' and the drivers' OpenSSL writes).
int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
