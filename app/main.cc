// boxwatch: one binary, one subcommand per role (DESIGN.md "Processes").
#include <CLI/CLI.hpp>

#include <cstdio>

#include "app/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"boxwatch: real-time container risk alerts on Kafka"};
  app.require_subcommand(1);
  app.set_version_flag("--version", boxwatch::app::VersionString());
  boxwatch::app::RegisterTopicsCommand(app);
  boxwatch::app::RegisterDemoCommand(app);
  boxwatch::app::RegisterProfileCommand(app);
  boxwatch::app::RegisterWorkerCommand(app);
  boxwatch::app::RegisterDeliveryCommands(app);
  boxwatch::app::RegisterMetricsCommand(app);
  boxwatch::app::RegisterSimCommands(app);
  boxwatch::app::RegisterBacktestCommands(app);
  boxwatch::app::RegisterIngestCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit with 2, like every configuration error.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return boxwatch::app::ExitCode();
}
