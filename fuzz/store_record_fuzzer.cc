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

  hs::Record rec;
  const absl::Status decoded = hs::DecodeRecord(bytes, "fuzz/spectrum", 356001, 13, rec);
  if (decoded.ok()) {
    hs::Record again;
    const std::string encoded = hs::EncodeRecord(rec.histogram, rec.verdict);
    if (!hs::DecodeRecord(encoded, rec.histogram.monitor, rec.histogram.run,
                          rec.histogram.lumisection, again)
             .ok() ||
        again.histogram.contents.size() != rec.histogram.contents.size() ||
        again.verdict.quality != rec.verdict.quality)
      std::abort();  // what the store writes, it must read back
  } else if (decoded.message().empty()) {
    std::abort();  // a refusal says why
  }
  hs::Label label;
  const absl::Status label_decoded = hs::DecodeLabel(bytes, "fuzz/spectrum", 356001, 13, label);
  if (label_decoded.ok()) {
    hs::Label again;
    if (!hs::DecodeLabel(hs::EncodeLabel(label), label.monitor, label.run, label.lumisection, again)
             .ok() ||
        again.good != label.good || again.comment != label.comment)
      std::abort();
  } else if (label_decoded.message().empty()) {
    std::abort();
  }

  auto meta = hs::ParseStoredMeta(bytes);
  if (!meta.ok() && meta.status().message().empty()) std::abort();
  return 0;
}
