#pragma once
// Subcommand registration. Each Register* adds a CLI11 subcommand whose
// callback runs the command and stores its exit code for main().

namespace CLI {
class App;
}

namespace boxwatch::app {

const char* VersionString();
int ExitCode();
void SetExitCode(int code);

void RegisterTopicsCommand(CLI::App& app);  // topics create|describe
void RegisterDemoCommand(CLI::App& app);    // demo on the embedded broker
void RegisterProfileCommand(CLI::App& app); // profile check|publish
void RegisterWorkerCommand(CLI::App& app);  // the stateful worker
void RegisterDeliveryCommands(CLI::App& app);  // dispatcher and hub
void RegisterMetricsCommand(CLI::App& app);   // metrics: list the exported families
void RegisterSimCommands(CLI::App& app);       // simulate and evaluate
void RegisterIngestCommand(CLI::App& app);     // ingest: CUSCAR and N42 into canonical records
void RegisterBacktestCommands(CLI::App& app);  // backtest, profile tune (after RegisterProfileCommand)

}  // namespace boxwatch::app
