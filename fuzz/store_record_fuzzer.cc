// What the state store reads back (server/store.h, server/meta.h): a histogram record, a
// label and a monitor's meta record. Damaged bytes must be refused or decoded into something
// the daemon can use, and a decoded record encodes and decodes to itself.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/meta.h"
#include "server/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool kQuiet = [] {  // protobuf logs every invalid UTF-8 string it parses
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)kQuiet;
  namespace hs = histguard::server;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  histguard::v1::Inspection rec;
  const absl::Status decoded = hs::DecodeRecord(bytes, "fuzz/spectrum", 356001, 13, rec);
  if (decoded.ok()) {
    histguard::v1::Inspection again;
    const std::string encoded = hs::EncodeRecord(rec.histogram(), rec.verdict());
    if (!hs::DecodeRecord(encoded, rec.histogram().monitor(), rec.histogram().run(),
                          rec.histogram().lumisection(), again)
             .ok() ||
        again.histogram().contents_size() != rec.histogram().contents_size())
      std::abort();  // what the store writes, it must read back
  } else if (decoded.message().empty()) {
    std::abort();  // a refusal says why
  }
  histguard::v1::LabelRequest label;
  (void)label.ParseFromArray(data, static_cast<int>(size));

  auto meta = hs::ParseStoredMeta(bytes);
  if (!meta.ok() && meta.status().message().empty()) std::abort();
  return 0;
}
