// Who may call what: the token file, roles, reloading, and log lines a client cannot forge.
#include "server/security.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace histguard::server {
namespace {

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/histguard-tokens-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/tokens";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }
  std::string Line(const std::string& role, const std::string& token, const std::string& name) {
    return role + " sha256:" + Sha256Hex(token) + " " + name + "\n";
  }

  std::string dir_, path_;
};

TEST_F(TokenFileTest, EachRoleMayDoItsOwnCallsOnly) {
  Write("# roles\n" + Line("ingest", "t-ingest", "daq") + Line("read", "t-read", "grafana") +
        Line("operator", "t-op", "alice") + "read cn:viewer.example.org\n");
  auto auth = Authenticator::Open(path_);
  ASSERT_TRUE(auth.ok()) << auth.status();
  const Authenticator& a = **auth;
  EXPECT_TRUE(a.enabled());
  EXPECT_EQ(*a.Check("Bearer t-ingest", "", Role::kIngest), "daq");
  EXPECT_EQ(a.Check("Bearer t-ingest", "", Role::kRead).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*a.Check("Bearer t-read", "", Role::kRead), "grafana");
  EXPECT_EQ(a.Check("Bearer t-read", "", Role::kOperator).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*a.Check("Bearer t-op", "", Role::kOperator), "alice");
  EXPECT_EQ(*a.Check("Bearer t-op", "", Role::kRead), "alice");  // operators read too
  EXPECT_EQ(a.Check("Bearer t-op", "", Role::kIngest).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*a.Check("", "viewer.example.org", Role::kRead), "viewer.example.org");
  EXPECT_EQ(a.Check("", "", Role::kRead).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(a.Check("Bearer wrong", "", Role::kRead).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(a.Check("", "stranger", Role::kRead).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenFileTest, MalformedLinesAreNamed) {
  Write(Line("ingest", "a", "x") + "admin sha256:" + Sha256Hex("b") + "\n");
  auto a = Authenticator::Open(path_);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("line 2: unknown role 'admin'"), std::string::npos)
      << a.status();
  Write("read sha256:1234\n");
  a = Authenticator::Open(path_);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("64 lower-case hex digits"), std::string::npos);
  EXPECT_FALSE(Authenticator::Open(dir_ + "/missing").ok());
}

TEST_F(TokenFileTest, AChangedFileTakesEffectWithoutARestart) {
  Write(Line("read", "old", "old-reader"));
  auto auth = Authenticator::Open(path_);
  ASSERT_TRUE(auth.ok());
  EXPECT_TRUE((*auth)->Check("Bearer old", "", Role::kRead).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Write(Line("read", "new", "new-reader"));
  EXPECT_EQ(*(*auth)->Check("Bearer new", "", Role::kRead), "new-reader");
  EXPECT_FALSE((*auth)->Check("Bearer old", "", Role::kRead).ok());
  // A broken edit keeps the tokens that worked.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Write("nonsense\n");
  EXPECT_TRUE((*auth)->Check("Bearer new", "", Role::kRead).ok());
}

TEST(Security, WithoutATokenFileEveryoneIsAnonymous) {
  auto auth = Authenticator::Open("");
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE((*auth)->enabled());
  EXPECT_EQ(*(*auth)->Check("", "", Role::kOperator), "anonymous");
}

TEST(Security, AnOpenAddressNeedsTlsTokensOrInsecure) {
  EXPECT_TRUE(ValidateExposure("127.0.0.1:50051", "localhost:9650", false, false, false).ok());
  const absl::Status open =
      ValidateExposure("0.0.0.0:50051", "127.0.0.1:9650", false, false, false);
  EXPECT_EQ(open.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(open.message().find("refusing to listen on 0.0.0.0:50051"), std::string::npos);
  EXPECT_FALSE(ValidateExposure("127.0.0.1:50051", "[::]:9650", false, false, false).ok());
  EXPECT_TRUE(ValidateExposure("0.0.0.0:50051", "0.0.0.0:9650", true, false, false).ok());
  EXPECT_TRUE(ValidateExposure("0.0.0.0:50051", "0.0.0.0:9650", false, true, false).ok());
  EXPECT_TRUE(ValidateExposure("0.0.0.0:50051", "0.0.0.0:9650", false, false, true).ok());
}

TEST(Security, LogTextCannotStartANewLine) {
  const std::string forged = "alice\nhistguardd: forgot monitor pixel/all\r";
  const std::string p = Printable(forged);
  EXPECT_EQ(p.find('\n'), std::string::npos);
  EXPECT_EQ(p.find('\r'), std::string::npos);
  EXPECT_EQ(p, "alice\\x0ahistguardd: forgot monitor pixel/all\\x0d");
  EXPECT_EQ(Printable(std::string(1000, 'a'), 10), "aaaaaaaaaa...");
}

TEST(Security, Sha256IsTheStandardOne) {
  EXPECT_EQ(Sha256Hex("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

}  // namespace
}  // namespace histguard::server
