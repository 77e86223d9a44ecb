// `boxwatch dispatcher` and `boxwatch hub` (delivery/dispatcher.h,
// delivery/hub.h). Both print one JSON line per notable event on stdout
// (started with their ports, subscribed, refused, stopped) for operators and
// tests; logs go to stderr. Exit codes: 0 after SIGTERM/SIGINT, 2 for a bad
// command line or configuration (every problem listed), 3 when the
// dispatcher refuses the hub for good, 1 for other failures.
#include <CLI/CLI.hpp>
#include <prometheus/registry.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "app/commands.h"
#include "app/kafka_options.h"
#include "core/http.h"
#include "delivery/accounts.h"
#include "delivery/dispatcher.h"
#include "delivery/hub.h"
#include "delivery/probes.h"
#include "monitoring/metrics.h"

namespace boxwatch::app {
namespace {

std::atomic<bool> g_stop{false};

void PrintLine(const std::string& json) {
  std::printf("%s\n", json.c_str());
  std::fflush(stdout);
}

void InstallStopHandlers() {
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
}

struct DispatcherArgs {
  delivery::DispatcherOptions options;
  std::string metrics_listen = "0.0.0.0:9465";
  KafkaCliOptions kafka;
};

int RunDispatcher(DispatcherArgs& a) {
  std::string problems = a.options.Validate();
  if (auto kafka = ResolveKafkaOptions(a.kafka); kafka.ok()) {
    a.options.kafka = std::move(*kafka);
  } else {
    problems += (problems.empty() ? "" : "\n") + kafka.error().message;
  }
  if (!problems.empty()) {
    std::fprintf(stderr, "boxwatch dispatcher: invalid configuration:\n%s\n", problems.c_str());
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  monitoring::AddProcessCollector(*registry);
  InstallStopHandlers();
  auto dispatcher = delivery::Dispatcher::Start(a.options, registry);
  if (!dispatcher.ok()) {
    std::fprintf(stderr, "boxwatch dispatcher: %s\n", dispatcher.error().message.c_str());
    return dispatcher.error().code == Errc::kInvalidArgument ? 2 : 1;
  }
  delivery::Dispatcher* d = dispatcher->get();
  auto endpoint = monitoring::Endpoint::Start(a.metrics_listen, registry, [d] { return d->NotReady(); });
  if (!endpoint.ok()) {
    std::fprintf(stderr, "boxwatch dispatcher: %s\n", endpoint.error().message.c_str());
    return 2;
  }
  PrintLine("{\"event\":\"started\",\"role\":\"dispatcher\",\"grpc_port\":" + std::to_string(d->port()) +
            ",\"metrics_port\":" + std::to_string((*endpoint)->port()) + "}");
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  d->Shutdown();
  (*endpoint)->Stop();
  PrintLine("{\"event\":\"stopped\",\"role\":\"dispatcher\"}");
  return 0;
}

struct HubArgs {
  delivery::HubOptions options;
  std::string regions;
  std::string min_priority = "LOW";
  std::string metrics_listen = "0.0.0.0:9466";
};

// Reads a password from stdin: prompted twice without echo on a terminal,
// else the first line (for scripts). Never from the command line.
Result<std::string> ReadPassword() {
  // Echo off on a terminal; nullopt when it cannot be turned off (the
  // password would show).
  auto line = [](bool echo_off) -> std::optional<std::string> {
    termios old{};
    const bool tty = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty && echo_off) {
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      if (::tcsetattr(STDIN_FILENO, TCSANOW, &quiet) != 0) return std::nullopt;
    }
    std::string text;
    std::getline(std::cin, text);
    if (tty && echo_off) {
      (void)::tcsetattr(STDIN_FILENO, TCSANOW, &old);
      std::fputs("\n", stderr);
    }
    return text;
  };
  if (!::isatty(STDIN_FILENO)) return *line(false);
  std::fputs("password: ", stderr);
  auto first = line(true);
  if (!first) return Error(Errc::kIo, "cannot turn off the terminal's echo; pipe the password in instead");
  std::fputs("again: ", stderr);
  auto again = line(true);
  if (!again || *again != *first) return Error(Errc::kInvalidArgument, "the passwords differ");
  return *first;
}

struct AccountArgs {
  std::string file = "/etc/boxwatch/hub-accounts";
  std::string name;
  std::string role = "officer";
  std::string regions;
};

// Runs `edit` on the accounts file (an absent file starts empty) and saves it.
int EditAccounts(const AccountArgs& a, const std::function<Status(delivery::Accounts&)>& edit, bool save = true) {
  delivery::Accounts accounts;
  if (std::ifstream probe(a.file); probe) {
    auto loaded = delivery::Accounts::Load(a.file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "boxwatch hub: %s\n", loaded.error().message.c_str());
      return 2;
    }
    accounts = std::move(*loaded);
  }
  if (Status s = edit(accounts); !s.ok()) {
    std::fprintf(stderr, "boxwatch hub: %s\n", s.message().c_str());
    return 2;
  }
  if (!save) return 0;
  if (Status s = accounts.Save(a.file); !s.ok()) {
    std::fprintf(stderr, "boxwatch hub: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string r; std::getline(in, r, ',');) out.push_back(r);
  return out;
}

// `boxwatch hub users add|remove|list` and `boxwatch hub tokens add|remove|list`.
CLI::App* AddAccountCommands(CLI::App& hub) {
  auto a = std::make_shared<AccountArgs>();
  CLI::App* users = hub.add_subcommand("users", "Manage the control room's people (officers, supervisors, admins)");
  CLI::App* tokens = hub.add_subcommand("tokens", "Manage API tokens for machine clients of the control room's API");
  for (CLI::App* group : {users, tokens}) {
    group->require_subcommand(1);
    const bool is_token = group == tokens;
    CLI::App* add = group->add_subcommand(
        "add", is_token ? "Add (or replace) a token; prints the secret once on stdout"
                        : "Add (or replace) a person; the password is read from stdin (twice, hidden, on a terminal)");
    CLI::App* remove = group->add_subcommand("remove", "Remove one");
    CLI::App* list = group->add_subcommand("list", "List names, roles and regions (no secrets)");
    for (CLI::App* c : {add, remove, list})
      c->add_option("--accounts", a->file, "The accounts file")->capture_default_str();
    for (CLI::App* c : {add, remove}) c->add_option("name", a->name, "Name")->required();
    add->add_option("--role", a->role, "officer, supervisor or admin")->capture_default_str();
    add->add_option("--regions", a->regions, "Comma-separated regions this one may read (* for all)")->required();
    add->callback([a, is_token] {
      auto role = delivery::ParseRole(a->role);
      if (!role) {
        std::fprintf(stderr, "boxwatch hub: --role %s is not officer, supervisor or admin\n", a->role.c_str());
        SetExitCode(2);
        return;
      }
      std::string secret;
      SetExitCode(EditAccounts(*a, [&](delivery::Accounts& acc) -> Status {
        if (is_token) {
          auto t = acc.AddToken(a->name, *role, SplitComma(a->regions));
          if (!t.ok()) return t.error();
          secret = *t;
          return Status::Ok();
        }
        auto password = ReadPassword();
        if (!password.ok()) return password.error();
        return acc.SetUser(a->name, *role, SplitComma(a->regions), *password);
      }));
      if (is_token && !secret.empty()) std::printf("%s\n", secret.c_str());
    });
    remove->callback([a, is_token] {
      SetExitCode(EditAccounts(*a, [&](delivery::Accounts& acc) -> Status {
        if (!acc.Remove(a->name, is_token)) return Error(Errc::kNotFound, "no " + std::string(is_token ? "token " : "user ") + a->name);
        return Status::Ok();
      }));
    });
    list->callback([a, is_token] {
      SetExitCode(EditAccounts(*a, [&](delivery::Accounts& acc) -> Status {
        for (const auto& x : acc.all()) {
          if (x.is_token != is_token) continue;
          std::string regions;
          for (const auto& r : x.regions) regions += (regions.empty() ? "" : ",") + r;
          std::printf("%s\t%s\t%s\n", x.name.c_str(), delivery::RoleName(x.role), regions.c_str());
        }
        return Status::Ok();
      }, false));
    });
  }
  return users;
}

int RunHub(HubArgs& a) {
  std::vector<std::string> problems;
  std::stringstream rs(a.regions);
  for (std::string r; std::getline(rs, r, ',');) a.options.regions.push_back(r);
  if (!delivery::ParsePriority(a.min_priority, &a.options.min_priority))
    problems.push_back("--min-priority " + a.min_priority + " is not LOW, MEDIUM, HIGH or CRITICAL");
  if (std::string p = a.options.Validate(); !p.empty()) problems.push_back(p);
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
    std::fprintf(stderr, "boxwatch hub: invalid configuration:\n%s\n", all.c_str());
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  monitoring::AddProcessCollector(*registry);
  InstallStopHandlers();
  auto hub = delivery::Hub::Start(a.options, registry, PrintLine);
  if (!hub.ok()) {
    std::fprintf(stderr, "boxwatch hub: %s\n", hub.error().message.c_str());
    return hub.error().code == Errc::kInvalidArgument ? 2 : 1;
  }
  delivery::Hub* h = hub->get();
  auto endpoint = monitoring::Endpoint::Start(a.metrics_listen, registry, [h] { return h->NotReady(); });
  if (!endpoint.ok()) {
    std::fprintf(stderr, "boxwatch hub: %s\n", endpoint.error().message.c_str());
    return 2;
  }
  PrintLine("{\"event\":\"started\",\"role\":\"hub\",\"hub_id\":\"" + http::JsonEscape(a.options.hub_id) +
            "\",\"http_port\":" + std::to_string(h->http_port()) +
            ",\"metrics_port\":" + std::to_string((*endpoint)->port()) + "}");
  Status s = h->Run(g_stop);
  (*endpoint)->Stop();
  PrintLine(std::string("{\"event\":\"stopped\",\"role\":\"hub\",\"ok\":") + (s.ok() ? "true" : "false") + "}");
  if (!s.ok()) {
    std::fprintf(stderr, "boxwatch hub: %s\n", s.message().c_str());
    return 3;
  }
  return 0;
}

}  // namespace

void RegisterDeliveryCommands(CLI::App& app) {
  auto d = std::make_shared<DispatcherArgs>();
  CLI::App* dc = app.add_subcommand(
      "dispatcher",
      "Serve AlertService to regional hubs: alerts from the alerts topic by region and priority, with resume "
      "tokens; ReportOutcome to the outcomes topic; container look-ups (docs/delivery.md)");
  dc->add_option("--bootstrap", d->options.bootstrap, "Kafka bootstrap servers (host:port,...)")
      ->envname("BOXWATCH_BOOTSTRAP");
  dc->add_option("--topic-prefix", d->options.topic_prefix, "Prefix of every topic name (default: none)")
      ->envname("BOXWATCH_TOPIC_PREFIX");
  dc->add_option("--listen", d->options.listen, "gRPC address host:port; port 0 picks a free port")
      ->capture_default_str();
  dc->add_option("--hubs", d->options.hubs_file,
                 "YAML file mapping each hub id (certificate common name) to the regions it may read");
  dc->add_option("--tls-ca", d->options.tls_ca, "PEM CA certificate that signs hub certificates");
  dc->add_option("--tls-cert", d->options.tls_cert, "PEM certificate chain of the dispatcher");
  dc->add_option("--tls-key", d->options.tls_key, "PEM private key of the dispatcher");
  dc->add_flag("--insecure", d->options.insecure,
               "Plaintext gRPC and hub ids taken on trust: only for a local demo on loopback");
  dc->add_option("--ack-window", d->options.default_ack_window,
                 "Alerts a hub may have unacknowledged when its subscription asks for 0")
      ->capture_default_str();
  dc->add_option("--max-ack-window", d->options.max_ack_window, "Largest acknowledgement window a hub may ask for")
      ->capture_default_str();
  dc->add_option("--max-buffered", d->options.max_buffered,
                 "Alerts queued per hub stream for priority ordering (bounds memory per hub)")
      ->capture_default_str();
  dc->add_option("--sweep-backlog", d->options.sweep_backlog,
                 "A hub that (re)connects more than this many alerts behind gets its backlog in passes, CRITICAL "
                 "first, then HIGH, MEDIUM, LOW, while new alerts flow past it; 0: never")
      ->capture_default_str();
  dc->add_option("--heartbeat-ms", d->options.heartbeat_ms, "ms between heartbeats on an idle stream")
      ->capture_default_str();
  dc->add_option("--catch-up-ms", d->options.catch_up_ms,
                 "ms a (re)connecting hub's stream may read ahead before its first alert, so the most urgent go first")
      ->capture_default_str();
  dc->add_option("--lookup-max-records", d->options.lookup_max_records,
                 "Records GetContainer scans back through the alerts topic at most")
      ->capture_default_str();
  AddKafkaOptions(dc, &d->kafka);
  dc->add_option("--metrics-listen", d->metrics_listen, "Address of /metrics, /healthz and /readyz")
      ->capture_default_str();
  dc->callback([d] { SetExitCode(RunDispatcher(*d)); });

  auto h = std::make_shared<HubArgs>();
  CLI::App* hc = app.add_subcommand(
      "hub",
      "Regional hub: subscribe to a dispatcher for some regions, store alerts exactly once, serve the control "
      "room's HTTP API and live feed, pass inspection outcomes back (docs/delivery.md)");
  hc->add_option("--hub-id", h->options.hub_id, "This hub's id; with TLS, its certificate's common name")
      ->envname("BOXWATCH_HUB_ID");
  hc->add_option("--dispatcher", h->options.dispatcher, "Dispatcher address host:port");
  hc->add_option("--regions", h->regions, "Comma-separated region ids to receive (e.g. mekong,central-asia)");
  hc->add_option("--min-priority", h->min_priority, "Lowest priority to receive: LOW, MEDIUM, HIGH or CRITICAL")
      ->capture_default_str();
  hc->add_option("--state-dir", h->options.state_dir, "Directory of the hub's alert store (RocksDB)")
      ->capture_default_str();
  hc->add_option("--http-listen", h->options.http_listen, "Address of the control-room HTTP API; port 0 picks one")
      ->capture_default_str();
  hc->add_option("--http-cert", h->options.http_cert, "PEM certificate chain of the control room's HTTPS listener");
  hc->add_option("--http-key", h->options.http_key, "PEM private key of the control room's HTTPS listener");
  hc->add_flag("--http-plaintext", h->options.http_plaintext,
               "Serve the control room over plain HTTP: only for a local demo on loopback");
  hc->add_option("--accounts", h->options.accounts_file,
                 "The control room's accounts file (edit it with `boxwatch hub users` and `boxwatch hub tokens`)")
      ->capture_default_str();
  hc->add_option("--tls-ca", h->options.tls_ca, "PEM CA certificate that signs the dispatcher's certificate");
  hc->add_option("--tls-cert", h->options.tls_cert, "PEM certificate chain of this hub");
  hc->add_option("--tls-key", h->options.tls_key, "PEM private key of this hub");
  hc->add_option("--tls-server-name", h->options.tls_server_name,
                 "Name expected in the dispatcher's certificate (default: the host of --dispatcher)");
  hc->add_flag("--insecure", h->options.insecure, "Plaintext gRPC: only for a local demo on loopback");
  hc->add_option("--ack-window", h->options.ack_window, "Alerts the dispatcher may send ahead of acknowledgements")
      ->capture_default_str();
  hc->add_option("--max-batch", h->options.max_batch, "Alerts stored per synced write at most")
      ->capture_default_str();
  hc->add_option("--reconnect-min-ms", h->options.reconnect_min_ms, "First reconnect backoff, ms")
      ->capture_default_str();
  hc->add_option("--reconnect-max-ms", h->options.reconnect_max_ms, "Reconnect backoff ceiling, ms")
      ->capture_default_str();
  hc->add_option("--metrics-listen", h->metrics_listen, "Address of /metrics, /healthz and /readyz")
      ->capture_default_str();
  CLI::App* users = AddAccountCommands(*hc);
  hc->callback([h, hc, users] {
    if (hc->got_subcommand(users) || hc->got_subcommand("tokens")) return;
    SetExitCode(RunHub(*h));
  });
}

}  // namespace boxwatch::app
