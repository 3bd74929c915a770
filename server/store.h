// Store: the daemon's embedded key-value state under the data directory (RocksDB).
//
//   h|<monitor>|<run><ls>   every scored histogram with its verdict (a v1::Inspection without
//                           expectation): per monitor the newest `history` and the window
//   l|<monitor>|<run><ls>   a person's label (v1::LabelRequest)
//   m|<monitor>             the monitor's state (JSON: shape, active version, versions, counters)
// run and ls are big-endian, so a monitor's records iterate in (run, lumisection) order.
//
// Writes are grouped in a Batch and committed with one synced write (group commit): a verdict is
// acknowledged only after the batch holding its histogram is on disk. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "histguard/v1/histguard.pb.h"

namespace histguard::server {

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

  // Opens (creating if needed) the store in `dir`. Null with `error` filled on failure.
  static std::unique_ptr<Store> Open(const std::string& dir, std::string* error);
  ~Store();

  void PutRecord(Batch& b, const v1::Histogram& h, const v1::Verdict& v);
  void PutLabel(Batch& b, const v1::LabelRequest& label);
  void PutMeta(Batch& b, const std::string& monitor, const std::string& json);
  void DeleteRecord(Batch& b, const std::string& monitor, uint64_t run, uint64_t ls);
  // Synced write of the batch; clears it. False with `error` on an I/O failure.
  bool Commit(Batch& b, std::string* error);
  // Unsynced write of the batch (clears it); durable once Sync() returns. Writing several
  // batches and syncing once is group commit.
  bool Write(Batch& b, std::string* error);
  bool Sync(std::string* error);

  std::optional<v1::Inspection> GetRecord(const std::string& monitor, uint64_t run,
                                          uint64_t ls) const;
  std::optional<v1::LabelRequest> GetLabel(const std::string& monitor, uint64_t run,
                                           uint64_t ls) const;
  // Records of `monitor` in (run, lumisection) order; `fn` returns false to stop.
  void ForEachRecord(const std::string& monitor,
                     const std::function<bool(const v1::Inspection&)>& fn) const;
  // Labels of `monitor`.
  std::vector<v1::LabelRequest> Labels(const std::string& monitor) const;
  // Every monitor's state: (monitor, json).
  std::vector<std::pair<std::string, std::string>> AllMeta() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace histguard::server
