#include "server/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <cmath>
#include <string_view>

namespace histguard::server {
namespace {

void AppendBe64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string Prefix(char kind, const std::string& monitor) {
  std::string k(1, kind);
  k += '|';
  k += monitor;
  k += '|';
  return k;
}

std::string Key(char kind, const std::string& monitor, uint64_t run, uint64_t ls) {
  std::string k = Prefix(kind, monitor);
  AppendBe64(k, run);
  AppendBe64(k, ls);
  return k;
}

// A record's value. Bin contents that are all whole counts (the usual case) are stored as
// varints ahead of the Inspection, which then carries no contents: 1-3 bytes a bin instead of
// 8, so a record is about a third of its size, and so is what the write-ahead log, the memtable
// and compaction move. Weighted contents keep the plain Inspection. The leading byte tells the
// two apart: a serialised Inspection starts with a field tag, never with kCompactRecord.
constexpr char kCompactRecord = 0x01;
constexpr double kMaxCompactCount = 9007199254740992.0;  // 2^53: every whole double below is exact

bool AllWholeCounts(const v1::Histogram& h) {
  for (double c : h.contents())
    if (!(c >= 0 && c <= kMaxCompactCount && c == std::floor(c))) return false;
  return true;
}

void AppendVarint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}

bool ReadVarint(const char*& p, const char* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const auto byte = static_cast<uint8_t>(*p++);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

std::string EncodeRecord(const v1::Histogram& h, const v1::Verdict& v) {
  v1::Inspection rec;
  *rec.mutable_histogram() = h;
  *rec.mutable_verdict() = v;
  if (!AllWholeCounts(h)) return rec.SerializeAsString();
  std::string out(1, kCompactRecord);
  out.reserve(1 + 10 + 2 * static_cast<size_t>(h.contents_size()) + 256);
  AppendVarint(out, static_cast<uint64_t>(h.contents_size()));
  for (double c : h.contents()) AppendVarint(out, static_cast<uint64_t>(c));
  rec.mutable_histogram()->clear_contents();  // every other field as it came
  rec.AppendToString(&out);
  return out;
}

bool DecodeRecord(std::string_view value, v1::Inspection& rec) {
  if (value.empty() || value[0] != kCompactRecord)
    return rec.ParseFromArray(value.data(), static_cast<int>(value.size()));
  const char* p = value.data() + 1;
  const char* end = value.data() + value.size();
  uint64_t n = 0;
  if (!ReadVarint(p, end, n) || n > static_cast<uint64_t>(end - p)) return false;
  std::vector<double> counts(n);
  for (double& c : counts) {
    uint64_t v = 0;
    if (!ReadVarint(p, end, v)) return false;
    c = static_cast<double>(v);
  }
  if (!rec.ParseFromArray(p, static_cast<int>(end - p))) return false;
  rec.mutable_histogram()->mutable_contents()->Assign(counts.begin(), counts.end());
  return true;
}

// A histogram's or label's key without its (run, lumisection): one prefix per monitor, whose keys
// arrive in lumisection order. With it the memtable keeps an insert hint per monitor, and an
// insert starts from where that monitor's previous one went instead of searching the skip list
// from the top (the search was the largest cost of writing a record).
class MonitorPrefix : public rocksdb::SliceTransform {
 public:
  static constexpr size_t kSuffix = 16;  // two big-endian 64-bit numbers
  const char* Name() const override { return "histguard.MonitorPrefix"; }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() > 2 + kSuffix && (key[0] == 'h' || key[0] == 'l') && key[1] == '|';
  }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - kSuffix);
  }
};

}  // namespace

struct Store::Batch::Impl {
  rocksdb::WriteBatch batch;
};

Store::Batch::Batch() : impl_(std::make_unique<Impl>()) {}
Store::Batch::~Batch() = default;
Store::Batch::Batch(Batch&&) noexcept = default;
bool Store::Batch::empty() const { return impl_->batch.Count() == 0; }

struct Store::Impl {
  std::unique_ptr<rocksdb::DB> db;
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

std::unique_ptr<Store> Store::Open(const std::string& dir, std::string* error) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(1);
  options.max_background_jobs = 1;
  options.OptimizeLevelStyleCompaction(32 << 20);
  // Bin contents barely compress, and compressing every flush costs scoring CPU.
  options.compression = rocksdb::kNoCompression;
  options.compression_per_level.clear();
  // One writer (the committer); the insert hints need single-threaded memtable writes.
  options.allow_concurrent_memtable_write = false;
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<MonitorPrefix>();
  rocksdb::DB* db = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) {
    *error = "cannot open the state store in " + dir + ": " + s.ToString();
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->db.reset(db);
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

void Store::PutRecord(Batch& b, const v1::Histogram& h, const v1::Verdict& v) {
  b.impl_->batch.Put(Key('h', h.monitor(), h.run(), h.lumisection()), EncodeRecord(h, v));
}

void Store::PutLabel(Batch& b, const v1::LabelRequest& label) {
  b.impl_->batch.Put(Key('l', label.monitor(), label.run(), label.lumisection()),
                     label.SerializeAsString());
}

void Store::PutMeta(Batch& b, const std::string& monitor, const std::string& json) {
  b.impl_->batch.Put("m|" + monitor, json);
}

void Store::DeleteRecord(Batch& b, const std::string& monitor, uint64_t run, uint64_t ls) {
  b.impl_->batch.Delete(Key('h', monitor, run, ls));
}

bool Store::Commit(Batch& b, std::string* error) {
  if (b.empty()) return true;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const rocksdb::Status s = impl_->db->Write(wo, &b.impl_->batch);
  b.impl_->batch.Clear();
  if (!s.ok()) {
    *error = "state store write failed: " + s.ToString();
    return false;
  }
  return true;
}

bool Store::Write(Batch& b, std::string* error) {
  if (b.empty()) return true;
  const rocksdb::Status s = impl_->db->Write(rocksdb::WriteOptions(), &b.impl_->batch);
  b.impl_->batch.Clear();
  if (!s.ok()) {
    *error = "state store write failed: " + s.ToString();
    return false;
  }
  return true;
}

bool Store::Sync(std::string* error) {
  const rocksdb::Status s = impl_->db->SyncWAL();
  if (!s.ok()) {
    *error = "state store sync failed: " + s.ToString();
    return false;
  }
  return true;
}

std::optional<v1::Inspection> Store::GetRecord(const std::string& monitor, uint64_t run,
                                               uint64_t ls) const {
  std::string value;
  if (!impl_->db->Get(rocksdb::ReadOptions(), Key('h', monitor, run, ls), &value).ok())
    return std::nullopt;
  v1::Inspection rec;
  if (!DecodeRecord(value, rec)) return std::nullopt;
  return rec;
}

std::optional<v1::LabelRequest> Store::GetLabel(const std::string& monitor, uint64_t run,
                                                uint64_t ls) const {
  std::string value;
  if (!impl_->db->Get(rocksdb::ReadOptions(), Key('l', monitor, run, ls), &value).ok())
    return std::nullopt;
  v1::LabelRequest label;
  if (!label.ParseFromString(value)) return std::nullopt;
  return label;
}

void Store::ForEachRecord(const std::string& monitor,
                          const std::function<bool(const v1::Inspection&)>& fn) const {
  const std::string prefix = Prefix('h', monitor);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  v1::Inspection rec;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    rec.Clear();
    if (!DecodeRecord(std::string_view(it->value().data(), it->value().size()), rec)) continue;
    if (!fn(rec)) break;
  }
}

std::vector<v1::LabelRequest> Store::Labels(const std::string& monitor) const {
  std::vector<v1::LabelRequest> out;
  const std::string prefix = Prefix('l', monitor);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    v1::LabelRequest label;
    if (label.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      out.push_back(std::move(label));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Store::AllMeta() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("m|"); it->Valid() && it->key().starts_with("m|"); it->Next())
    out.emplace_back(it->key().ToString().substr(2), it->value().ToString());
  return out;
}

}  // namespace histguard::server
