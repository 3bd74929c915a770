// Store: the daemon's embedded key-value state under the data directory (RocksDB).
//
//   h|<monitor>|<run><ls>   every scored histogram with its verdict (a record of the private
//                           schema, see EncodeRecord): per monitor the newest `history` and the
//                           window
//   l|<monitor>|<run><ls>   a person's label (the private schema's Label, see EncodeLabel)
//   m|<monitor>             the monitor's state (JSON: shape, active version, versions, counters)
// run and ls are big-endian, so a monitor's records iterate in (run, lumisection) order.
//
// Writes are grouped in a Batch and committed with one synced write (group commit): a verdict is
// acknowledged only after the batch holding its histogram is on disk. Thread-safe.
//
// Reads tell a missing entry (NotFound) from one that is stored but cannot be read (DataLoss);
// scans visit what reads and return a status that names what did not. Damage that RocksDB repairs
// by dropping data while it opens (a corrupted write-ahead log tail) is kept in
// RecoveryReports(), so the daemon can say what was lost.
//
// A full disk: writes are refused (ResourceExhausted, nothing written) while the directory's
// free space is below `reserve_bytes`, so RocksDB never meets a failing write (on which Debian's
// build aborts). A store opened on a full disk opens read-only (or empty, when there is none
// yet): reads work, writes are refused (Unavailable) until CheckSpace() finds room again and
// reopens it for writing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/domain.h"

namespace histguard::server {

// A stored histogram record, in the daemon's private storage schema
// (proto/histguard/store/record.proto): whole bin counts as varints, weighted ones as doubles,
// and the verdict; the key names the monitor, run and lumisection. A histogram without a producer
// time (time_unix_ms 0, "time received") is stored with `received_unix_ms` when that is given.
std::string EncodeRecord(const Histogram& h, const Verdict& v, int64_t received_unix_ms = 0);
// Reads a record of any schema ever written (2; 1, varint counts ahead of an Inspection; 0, a
// plain Inspection) stored under (monitor, run, ls). DataLoss says what is wrong with bytes that
// are none of them, or of a schema newer than this build.
[[nodiscard]] absl::Status DecodeRecord(std::string_view value, std::string_view monitor,
                                        uint64_t run, uint64_t ls, Record& rec);
// A label in the private schema (its key names the monitor, run and lumisection), and back: of
// any schema ever written (1; 0, the API's LabelRequest as it came).
std::string EncodeLabel(const Label& label);
[[nodiscard]] absl::Status DecodeLabel(std::string_view value, std::string_view monitor,
                                       uint64_t run, uint64_t ls, Label& label);

class Store {
 public:
  class Batch {
   public:
    Batch();
    ~Batch();
    Batch(Batch&&) noexcept;
    bool empty() const;

   private:
    friend class Store;
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };

  // Opens (creating if needed) the store in `dir`; Unavailable saying why it cannot (another
  // daemon holds it, no permission, damage RocksDB cannot get past).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir,
                                                     uint64_t reserve_bytes = 0);
  ~Store();

  // Free bytes in the store's file system now; refreshes the full-disk state and, when there is
  // room again, reopens a store that was opened read-only.
  uint64_t CheckSpace();
  // OK, or why writes are refused now (ResourceExhausted: disk full; Unavailable: opened
  // read-only on a full disk and not yet reopened).
  absl::Status WritableStatus() const;

  void PutRecord(Batch& b, const Histogram& h, const Verdict& v, int64_t received_unix_ms = 0);
  void PutLabel(Batch& b, const Label& label);
  void PutMeta(Batch& b, const std::string& monitor, const std::string& json);
  void DeleteRecord(Batch& b, const std::string& monitor, uint64_t run, uint64_t ls);
  // Everything stored of `monitor`: histograms, labels and state.
  void DeleteMonitor(Batch& b, const std::string& monitor);
  // Synced write of the batch; clears it.
  [[nodiscard]] absl::Status Commit(Batch& b);
  // Unsynced write of the batch (clears it); durable once Sync() returns. Writing several
  // batches and syncing once is group commit. Sync only after writes that succeeded.
  [[nodiscard]] absl::Status Write(Batch& b);
  [[nodiscard]] absl::Status Sync();

  // NotFound when nothing is stored under the key, DataLoss when the stored record is damaged.
  [[nodiscard]] absl::StatusOr<Record> GetRecord(const std::string& monitor, uint64_t run,
                                                 uint64_t ls) const;
  // Records of `monitor` in (run, lumisection) order; `fn` returns false to stop. Records that
  // cannot be read are skipped and counted: DataLoss names how many, or the read error that ended
  // the scan early.
  [[nodiscard]] absl::Status ForEachRecord(const std::string& monitor,
                                           const std::function<bool(const Record&)>& fn) const;
  // Labels of `monitor`, the same way.
  [[nodiscard]] absl::Status ForEachLabel(const std::string& monitor,
                                          const std::function<void(const Label&)>& fn) const;
  // Every monitor's state: fn(monitor, json).
  [[nodiscard]] absl::Status ForEachMeta(
      const std::function<void(const std::string&, const std::string&)>& fn) const;

  // What RocksDB reported dropping or finding damaged while it opened the store.
  std::vector<std::string> RecoveryReports() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace histguard::server
