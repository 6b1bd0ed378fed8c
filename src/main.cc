#include "cli/cli.h"

int main(int argc, char** argv) { return connreg::cli::Run(argc, argv); }
