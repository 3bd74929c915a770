// histguardd: the data-quality-monitoring daemon. Wires configuration, the Ingest service, the
// scorer, the training pool and the metrics endpoint together, and drains cleanly on SIGTERM.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <malloc.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>

#include "models/trainer.h"
#include "server/config.h"
#include "server/control_service.h"
#include "server/health.h"
#include "server/http_routes.h"
#include "server/http_server.h"
#include "server/ingest_service.h"
#include "server/meta.h"
#include "server/metrics.h"
#include "server/model_files.h"
#include "server/monitors.h"
#include "server/restore.h"
#include "server/score_queue.h"
#include "server/scorer.h"
#include "server/security.h"
#include "server/store.h"
#include "server/training_scheduler.h"

namespace hs = histguard::server;

namespace {

std::string WithPort(const std::string& address, int port) {
  std::string host, p;
  if (!hs::SplitHostPort(address, host, p)) return address;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = hs::ParseConfig(argc, argv);
  if (!parsed.config) {
    (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.exit_message << "\n";
    return parsed.exit_code;
  }
  const hs::Config& config = *parsed.config;

  // Security first: a daemon that would be open to anyone, or whose credentials do not load,
  // does not start.
  auto auth = hs::Authenticator::Open(config.token_file);
  if (!auth.ok()) {
    std::cerr << "histguardd: " << auth.status().message() << "\n";
    return 2;
  }
  const bool tls = !config.tls_cert.empty();
  for (const absl::Status& s :
       {hs::CheckTlsFiles(config), hs::ValidateExposure(config.listen, config.metrics_listen, tls,
                                                        (*auth)->enabled(), config.insecure)}) {
    if (!s.ok()) {
      std::cerr << "histguardd: " << s.message() << "\n";
      return 2;
    }
  }

  std::error_code fs_error;
  std::filesystem::create_directories(config.data_dir, fs_error);
  if (fs_error) {
    std::cerr << "histguardd: cannot create data directory " << config.data_dir << ": "
              << fs_error.message() << "\n";
    return 1;
  }
  auto audit = hs::AuditLog::Open(config.audit_log.empty() ? config.data_dir + "/audit.log"
                                                           : config.audit_log);
  if (!audit.ok()) {
    std::cerr << "histguardd: " << audit.status().message() << "\n";
    return 1;
  }
  std::clog << "histguardd: "
            << (tls ? "TLS on gRPC and HTTP" + std::string(config.tls_client_ca.empty()
                                                               ? ""
                                                               : " with client certificates")
                    : std::string("no TLS"))
            << ", "
            << ((*auth)->enabled() ? "roles from " + config.token_file
                                   : std::string("no authentication (every caller may do all)"))
            << (!tls && !(*auth)->enabled() && !config.insecure ? "; loopback only" : "")
            << (config.insecure ? "; --insecure" : "") << "\n";
  histguard::models::SetComputeThreads(config.compute_threads);
  // One malloc arena per core rather than per thread: gRPC's, the scorer's and the trainer's
  // threads each kept freed histograms in an arena of their own (hundreds of MB under 24
  // streams of 65,536-bin histograms).
  mallopt(M_ARENA_MAX, 2);

  // Signals are caught from here on; one arriving during start-up is handled once io runs.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);

  auto opened = hs::Store::Open(config.data_dir + "/state", config.disk_reserve_bytes);
  if (!opened.ok()) {
    std::cerr << "histguardd: " << opened.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<hs::Store> store = std::move(*opened);
  hs::Health health;
  const hs::ModelFiles files(config.data_dir);
  hs::Metrics metrics(config.metrics_stale_seconds);
  hs::MonitorRegistry registry(config, metrics);
  const auto restored = hs::RestoreMonitors(config, *store, files, registry);
  std::clog << "histguardd: restored " << restored.monitors << " monitors, " << restored.models
            << " models, " << restored.histograms << " stored histograms from " << config.data_dir
            << "\n";
  for (const auto& p : restored.problems) std::clog << "histguardd: restore: " << p << "\n";
  metrics.model_load_failures.Increment(static_cast<double>(restored.model_load_failures));
  metrics.StoreErrors("corrupt").Increment(static_cast<double>(restored.store_errors));
  health.AddStartupProblems(restored.problems);
  hs::TrainingScheduler training(config, metrics, *store, files);
  hs::Scorer scorer(config, metrics, registry, training, *store);
  hs::ScoreQueue queue(config, metrics, scorer, *store);
  hs::RunState runs(metrics);
  hs::IngestService ingest(config, metrics, queue, health, **auth, **audit, runs);
  hs::ControlService control(config, metrics, registry, *store, files, training, **auth, **audit);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(config.listen, hs::GrpcServerCredentials(config), &grpc_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  // gRPC's own buffers (messages received but not yet read by a call) are bounded by fixed
  // flow-control windows: with its bandwidth-delay probing a window grew to megabytes per stream,
  // and 24 streams of 65,536-bin histograms held about 1 GB in the transport alone.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1 << 20);
  // gRPC sets SO_REUSEPORT by default: a second daemon on the same port would then share the
  // traffic with this one. Refuse a port that is in use instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&ingest);
  builder.RegisterService(&control);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    std::cerr << "histguardd: cannot listen for gRPC on " << config.listen
              << " (address in use by another process, or not a local address)\n";
    return 1;
  }

  const std::string console_dir =
      config.console_dir.empty() ? hs::DefaultConsoleDir(argv[0]) : config.console_dir;
  if (console_dir.empty())
    std::clog << "histguardd: the console's pages are not installed: /console/ is not served "
                 "(its API is)\n";
  hs::ConsoleApi console(control, **auth, console_dir);
  std::unique_ptr<hs::HttpServer> http;
  try {
    http = std::make_unique<hs::HttpServer>(io, config.metrics_listen,
                                            hs::MakeHttpRoutes(metrics, health, **auth, &console),
                                            hs::HttpServer::Tls{config.tls_cert, config.tls_key});
  } catch (const std::exception& e) {
    std::cerr << "histguardd: " << e.what() << "\n";
    server->Shutdown();
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);

  // The data disk, every second: its free space is exported, ingestion stops below the reserve
  // (Control reads go on; the Ingest service reports NOT_SERVING) and resumes when there is room.
  constexpr char kIngestService[] = "histguard.v1.Ingest";
  boost::asio::steady_timer disk_timer(io);
  std::function<void()> check_disk = [&] {
    metrics.data_disk_free.Set(static_cast<double>(store->CheckSpace()));
    const absl::Status writable = store->WritableStatus();
    if (writable.ok() == health.disk_full()) {
      health.SetDiskFull(!writable.ok(), std::string(writable.message()));
      server->GetHealthCheckService()->SetServingStatus(kIngestService, writable.ok());
      std::clog << "histguardd: "
                << (writable.ok() ? std::string("data disk has room again: taking histograms")
                                  : std::string(writable.message()) + ": refusing histograms")
                << "\n";
    }
    disk_timer.expires_after(std::chrono::seconds(1));
    disk_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) check_disk();
    });
  };
  server->GetHealthCheckService()->SetServingStatus(kIngestService, true);
  check_disk();

  // Monitors idle past monitor_idle_expiry_seconds are forgotten.
  boost::asio::steady_timer expiry_timer(io);
  const auto expiry = std::chrono::duration<double>(config.monitor_idle_expiry_seconds);
  std::function<void()> expire = [&] {
    if (const size_t n = control.ForgetIdle(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(expiry)))
      std::clog << "histguardd: forgot " << n << " idle monitors\n";
    expiry_timer.expires_after(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::clamp(
            expiry / 10, std::chrono::duration<double>(0.5), std::chrono::duration<double>(60))));
    expiry_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) expire();
    });
  };
  if (config.monitor_idle_expiry_seconds > 0) expire();

  // One machine-readable line with the bound ports (port 0 in the flags picks free ones).
  std::cout << R"({"event":"listening","grpc":")" << WithPort(config.listen, grpc_port)
            << R"(","metrics":")" << WithPort(config.metrics_listen, http->port())
            << R"(","data_dir":")" << config.data_dir << "\"}" << std::endl;

  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    std::clog << "histguardd: signal " << signo << ", draining (up to "
              << config.drain_timeout_seconds << " s)\n";
    io.stop();
  });
  io.run();

  // Drain: read no new work, answer what was read (the scorer still runs), end trainings now
  // rather than at their own pace, then stop.
  health.SetServing(false);
  server->GetHealthCheckService()->Shutdown();
  ingest.Drain();
  training.Cancel();
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(config.drain_timeout_seconds * 1000));
  server->Shutdown(deadline);
  queue.Stop();
  training.Stop();
  // What changes with every histogram and is worth keeping (the axis nuisances' course, the
  // lasting evidence, the flagged streak) is written once, now: every monitor's record in one
  // commit, so a shutdown costs one sync however many monitors there are.
  hs::Store::Batch records;
  for (const std::shared_ptr<hs::Monitor>& m : registry.All()) {
    absl::MutexLock lk(&m->mu);
    if (!m->forgotten && m->model && m->meta_saved)
      store->PutMeta(records, m->name, hs::MetaJson(*m));
  }
  if (const absl::Status s = store->Commit(records); !s.ok())
    std::clog << "histguardd: the monitors' state is not saved at shutdown (" << s.message()
              << ")\n";
  http->Stop();
  std::clog << "histguardd: stopped\n";
  return 0;
}
