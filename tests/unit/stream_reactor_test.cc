// The Ingest service's stream on an in-process gRPC server: verdicts in the order received, with
// rejections in place, and reads that pause while a client takes no verdicts.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "client/client.h"
#include "server/health.h"
#include "server/ingest_service.h"
#include "server/run_state.h"
#include "tests/unit/monitor_pipeline.h"

namespace histguard::server {
namespace {

class StreamReactorTest : public MonitorPipeline {
 protected:
  void SetUp() override {
    MonitorPipeline::SetUp();
    // The subject is the transport: answers need not wait for the disk.
    config_.sync_writes = false;
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    ingest_.reset();
    queue_.reset();
    MonitorPipeline::TearDown();
  }

  // Serves the Ingest service on a free loopback port; returns its address.
  std::string Serve() {
    OpenSecurity("");
    health_.SetServing(true);
    runs_ = std::make_unique<RunState>(*metrics_);
    queue_ = std::make_unique<ScoreQueue>(config_, *metrics_, *scorer_, *store_);
    ingest_ = std::make_unique<IngestService>(config_, *metrics_, *queue_, health_, *auth_, *audit_,
                                              *runs_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    // As histguardd sets it: fixed flow-control windows, not grown by bandwidth probing.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.RegisterService(ingest_.get());
    server_ = builder.BuildAndStart();
    EXPECT_TRUE(server_ && port > 0);
    return "127.0.0.1:" + std::to_string(port);
  }

  Health health_;
  std::unique_ptr<RunState> runs_;
  std::unique_ptr<ScoreQueue> queue_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(StreamReactorTest, AnswersInTheOrderReceivedWithRejectionsInPlace) {
  Client client(Serve());
  auto stream = client.OpenStream();
  const std::string names[3] = {"tracker/a", "tracker/b", "tracker/c"};
  std::vector<v1::Histogram> sent;
  for (int i = 0; i < 300; ++i) {
    v1::Histogram h = Make(sim::Anomaly::kNone, 1e4, names[i % 3]);
    if (i % 7 == 3) h.mutable_contents()->RemoveLast();  // no longer the shape's size
    sent.push_back(std::move(h));
  }
  std::thread writer([&] {
    for (const auto& h : sent)
      if (!stream->Write(h)) break;
    stream->WritesDone();
  });
  std::vector<v1::Verdict> got;
  for (v1::Verdict v; stream->Read(&v);) got.push_back(v);
  writer.join();
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(got[i].monitor(), sent[i].monitor()) << "verdict " << i;
    EXPECT_EQ(got[i].lumisection(), sent[i].lumisection()) << "verdict " << i;
    EXPECT_EQ(got[i].quality() == v1::QUALITY_REJECTED, i % 7 == 3)
        << "verdict " << i << ": " << got[i].detail();
  }
}

// A client that writes and does not read: the daemon reads no further than the verdicts it
// cannot hand over allow (stream_in_flight, behind the transport's flow-control windows), rather
// than buffering the whole stream; everything is answered, in order, once the client reads.
TEST_F(StreamReactorTest, StopsReadingWhileItsVerdictsAreNotTaken) {
  config_.stream_in_flight = 8;
  // A client whose receive window stays at gRPC's fixed 64 KiB, so that unread verdicts back up
  // to the daemon (with bandwidth probing it grows to take megabytes of them).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  const auto channel = grpc::CreateCustomChannel(Serve(), grpc::InsecureChannelCredentials(), args);
  const auto ingest = v1::Ingest::NewStub(channel);
  grpc::ClientContext context;
  const auto stream = ingest->Stream(&context);
  std::vector<v1::Histogram> pool;
  for (int i = 0; i < 50; ++i) pool.push_back(Make());
  constexpr int kSent = 20000;
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < kSent; ++i) {
      v1::Histogram h = pool[i % pool.size()];
      h.set_lumisection(i + 1);
      if (!stream->Write(h)) break;
      ++written;
    }
    stream->WritesDone();
  });
  // Until the writer has been stuck for a second.
  int last = -1;
  for (int waited = 0; waited < 60 && written.load() != last; ++waited) {
    last = written.load();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  const double read_by_daemon = metrics_->received.Value();
  std::printf("stalled: %d written, %.0f read by the daemon\n", written.load(), read_by_daemon);
  EXPECT_LT(written.load(), kSent) << "the writer never stalled";
  EXPECT_LT(read_by_daemon, kSent / 4) << "the daemon read on with nobody taking its verdicts";

  int got = 0;
  for (v1::Verdict v; stream->Read(&v); ++got)
    ASSERT_EQ(v.lumisection(), static_cast<uint64_t>(got + 1)) << "out of order";
  writer.join();
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got, kSent);
}

}  // namespace
}  // namespace histguard::server
