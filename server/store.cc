#include "server/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <sys/statvfs.h>

#include "histguard/store/record.pb.h"
#include "server/convert.h"

#include <atomic>
#include <cmath>
#include <cstdarg>
#include <filesystem>
#include <string_view>
#include "server/locks.h"

namespace histguard::server {
namespace {

void AppendBe64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t ReadBe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
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

// A record's value starts with its schema's number (see proto/histguard/store/record.proto).
// Schema 2 is written; 1 and 0 (a plain Inspection, whose first byte is a field tag, never below
// 0x08) are still read.
constexpr char kCompactRecord = 0x01;  // schema 1: varint counts, then an Inspection without them
constexpr char kRecordSchema = 0x02;   // schema 2: a store::Record
constexpr char kLabelSchema = 0x01;    // a label: a store::Label (0: the API's LabelRequest)
constexpr double kMaxCompactCount = 9007199254740992.0;  // 2^53: every whole double below is exact

bool AllWholeCounts(const std::vector<double>& contents) {
  for (double c : contents)
    if (!(c >= 0 && c <= kMaxCompactCount && c == std::floor(c))) return false;
  return true;
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

// RocksDB's own log, with the warnings it gives when it repairs damage by dropping data (a
// corrupted write-ahead log is replayed up to the damage and the rest dropped) kept aside.
class RecoveryLog : public rocksdb::Logger {
 public:
  explicit RecoveryLog(std::shared_ptr<rocksdb::Logger> inner)
      : rocksdb::Logger(inner->GetInfoLogLevel()), inner_(std::move(inner)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level >= rocksdb::InfoLogLevel::WARN_LEVEL) {
      va_list copy;
      va_copy(copy, ap);
      char buf[512];
      std::vsnprintf(buf, sizeof buf, format, copy);
      va_end(copy);
      const std::string_view text(buf);
      if (text.find("orrupt") != text.npos || text.find("dropping") != text.npos) {
        absl::MutexLock lk(&mu_);
        if (reports_.size() < 100) reports_.emplace_back(text);
      }
    }
    inner_->Logv(level, format, ap);
  }
  std::vector<std::string> Reports() const {
    absl::MutexLock lk(&mu_);
    return reports_;
  }

 private:
  std::shared_ptr<rocksdb::Logger> inner_;
  mutable absl::Mutex mu_;
  std::vector<std::string> reports_ ABSL_GUARDED_BY(mu_);
};

// The directory whose file system holds the store: its parent while it does not exist yet.
std::string SpaceDir(const std::string& dir) {
  return std::filesystem::exists(dir) ? dir : std::filesystem::path(dir).parent_path().string();
}

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return UINT64_MAX;  // unknown: do not refuse on it
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::string MiB(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

absl::Status ScanStatus(const rocksdb::Iterator& it, size_t unreadable, const std::string& what,
                        const std::string& first_error = "") {
  if (!it.status().ok())
    return absl::DataLossError("reading " + what + " stopped early: " + it.status().ToString());
  if (unreadable > 0)
    return absl::DataLossError(std::to_string(unreadable) + " stored " + what +
                               " could not be decoded and were skipped" +
                               (first_error.empty() ? "" : " (the first: " + first_error + ")"));
  return absl::OkStatus();
}

}  // namespace

std::string EncodeRecord(const Histogram& h, const Verdict& v, int64_t received_unix_ms) {
  store::Record rec;
  rec.set_time_unix_ms(h.time_unix_ms == 0 && received_unix_ms > 0 ? received_unix_ms
                                                                   : h.time_unix_ms);
  rec.mutable_shape()->Assign(h.shape.begin(), h.shape.end());
  if (AllWholeCounts(h.contents)) {
    rec.mutable_counts()->Reserve(static_cast<int>(h.contents.size()));
    for (double c : h.contents) rec.add_counts(static_cast<uint64_t>(c));
  } else {
    rec.mutable_contents()->Assign(h.contents.begin(), h.contents.end());
  }
  rec.set_underflow(h.underflow);
  rec.set_overflow(h.overflow);
  rec.set_entries(h.entries);
  const auto put_axis = [](const Axis& a, store::Axis* out) {
    out->set_low(a.low);
    out->set_high(a.high);
    out->set_title(a.title);
  };
  if (h.x_axis) put_axis(*h.x_axis, rec.mutable_x_axis());
  if (h.y_axis) put_axis(*h.y_axis, rec.mutable_y_axis());
  store::Verdict& sv = *rec.mutable_verdict();
  sv.set_quality(ToProto(v.quality));
  sv.set_score(v.score);
  sv.set_p_value(v.p_value);
  sv.set_model_version(v.model_version);
  for (const models::BinPull& b : v.top_bins) {
    sv.add_top_bins(b.bin);
    sv.add_top_pulls(b.pull);
  }
  sv.set_detail(v.detail);
  for (const Nuisance& n : v.nuisances) {
    store::Nuisance* sn = sv.add_nuisances();
    sn->set_name(n.name);
    sn->set_value(n.value);
    sn->set_error(n.error);
  }
  std::string out(1, kRecordSchema);
  rec.AppendToString(&out);
  return out;
}

namespace {

// Schema 0 and 1 kept an Inspection, the API's message.
absl::Status FromInspection(const v1::Inspection& in, Record& out) {
  std::optional<Record> rec = FromProto(in);
  if (!rec)
    return absl::DataLossError("a record whose verdict has quality " +
                               std::to_string(in.verdict().quality()) +
                               ", not one this build knows");
  out = std::move(*rec);
  return absl::OkStatus();
}

absl::Status DecodeCompact(std::string_view value, Record& out) {
  const char* p = value.data() + 1;
  const char* end = value.data() + value.size();
  uint64_t n = 0;
  if (!ReadVarint(p, end, n) || n > static_cast<uint64_t>(end - p))
    return absl::DataLossError("a schema 1 record whose bin count is cut off or too large");
  std::vector<double> counts(n);
  for (double& c : counts) {
    uint64_t v = 0;
    if (!ReadVarint(p, end, v)) return absl::DataLossError("a schema 1 record cut off in its bins");
    c = static_cast<double>(v);
  }
  v1::Inspection rec;
  if (!rec.ParseFromArray(p, static_cast<int>(end - p)))
    return absl::DataLossError("a schema 1 record whose inspection does not parse");
  if (auto s = FromInspection(rec, out); !s.ok()) return s;
  out.histogram.contents = std::move(counts);
  return absl::OkStatus();
}

absl::Status DecodeSchema2(std::string_view value, std::string_view monitor, uint64_t run,
                           uint64_t ls, Record& out) {
  store::Record rec;
  if (!rec.ParseFromArray(value.data() + 1, static_cast<int>(value.size() - 1)))
    return absl::DataLossError("a schema 2 record that does not parse");
  if (rec.counts_size() > 0 && rec.contents_size() > 0)
    return absl::DataLossError("a schema 2 record with both whole and weighted bin contents");
  const store::Verdict& sv = rec.verdict();
  if (sv.top_bins_size() != sv.top_pulls_size())
    return absl::DataLossError("a schema 2 record with " + std::to_string(sv.top_bins_size()) +
                               " top bins but " + std::to_string(sv.top_pulls_size()) + " pulls");
  const std::optional<Quality> quality = FromProto(static_cast<v1::Quality>(sv.quality()));
  if (!quality)
    return absl::DataLossError("a schema 2 record whose verdict has quality " +
                               std::to_string(sv.quality()) + ", not one this build knows");
  Histogram& h = out.histogram;
  h = Histogram{};
  h.monitor = std::string(monitor);
  h.run = run;
  h.lumisection = ls;
  h.time_unix_ms = rec.time_unix_ms();
  h.shape.assign(rec.shape().begin(), rec.shape().end());
  if (rec.counts_size() > 0)
    h.contents.assign(rec.counts().begin(), rec.counts().end());  // whole numbers below 2^53
  else
    h.contents.assign(rec.contents().begin(), rec.contents().end());
  h.underflow = rec.underflow();
  h.overflow = rec.overflow();
  h.entries = rec.entries();
  if (rec.has_x_axis())
    h.x_axis = Axis{rec.x_axis().low(), rec.x_axis().high(), rec.x_axis().title()};
  if (rec.has_y_axis())
    h.y_axis = Axis{rec.y_axis().low(), rec.y_axis().high(), rec.y_axis().title()};
  Verdict& v = out.verdict;
  v = Verdict{};
  v.monitor = h.monitor;
  v.run = run;
  v.lumisection = ls;
  v.quality = *quality;
  v.score = sv.score();
  v.p_value = sv.p_value();
  v.model_version = sv.model_version();
  for (int i = 0; i < sv.top_bins_size(); ++i)
    v.top_bins.push_back({sv.top_bins(i), sv.top_pulls(i)});
  v.detail = sv.detail();
  for (const store::Nuisance& sn : sv.nuisances())
    v.nuisances.push_back({sn.name(), sn.value(), sn.error()});
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeRecord(std::string_view value, std::string_view monitor, uint64_t run,
                          uint64_t ls, Record& rec) {
  if (value.empty()) return absl::DataLossError("an empty record");
  const auto schema = static_cast<uint8_t>(value[0]);
  if (schema == kRecordSchema) return DecodeSchema2(value, monitor, run, ls, rec);
  if (schema == kCompactRecord) return DecodeCompact(value, rec);
  if (schema < 0x08)  // no field tag is below 0x08: a schema this build does not know
    return absl::DataLossError("a record of schema " + std::to_string(schema) +
                               ", newer than this histguard reads (2): written by a newer release");
  v1::Inspection in;
  if (!in.ParseFromArray(value.data(), static_cast<int>(value.size())))
    return absl::DataLossError("a schema 0 record that does not parse");
  return FromInspection(in, rec);
}

std::string EncodeLabel(const Label& label) {
  store::Label stored;
  stored.set_good(label.good);
  stored.set_comment(label.comment);
  stored.set_author(label.author);
  std::string out(1, kLabelSchema);
  stored.AppendToString(&out);
  return out;
}

absl::Status DecodeLabel(std::string_view value, std::string_view monitor, uint64_t run,
                         uint64_t ls, Label& label) {
  if (value.empty()) return absl::DataLossError("an empty label");
  const auto schema = static_cast<uint8_t>(value[0]);
  if (schema == kLabelSchema) {
    store::Label stored;
    if (!stored.ParseFromArray(value.data() + 1, static_cast<int>(value.size() - 1)))
      return absl::DataLossError("a schema 1 label that does not parse");
    label = Label{std::string(monitor), run, ls, stored.good(), stored.comment(), stored.author()};
    return absl::OkStatus();
  }
  if (schema < 0x08)
    return absl::DataLossError("a label of schema " + std::to_string(schema) +
                               ", newer than this histguard reads (1): written by a newer release");
  v1::LabelRequest old;  // schema 0: the API's message as it came
  if (!old.ParseFromArray(value.data(), static_cast<int>(value.size())))
    return absl::DataLossError("a schema 0 label that does not parse");
  std::optional<Label> parsed = FromProto(old);
  if (!parsed) return absl::DataLossError("a schema 0 label that is neither GOOD nor BAD");
  label = std::move(*parsed);
  label.monitor = std::string(monitor);  // the key says whose it is
  label.run = run;
  label.lumisection = ls;
  return absl::OkStatus();
}

struct Store::Batch::Impl {
  rocksdb::WriteBatch batch;
};

Store::Batch::Batch() : impl_(std::make_unique<Impl>()) {}
Store::Batch::~Batch() = default;
Store::Batch::Batch(Batch&&) noexcept = default;
bool Store::Batch::empty() const { return impl_->batch.Count() == 0; }

struct Store::Impl {
  std::string dir;
  rocksdb::Options options;
  uint64_t reserve = 0;
  std::shared_ptr<RecoveryLog> log;
  // db is replaced only when a read-only store reopens for writing (under the writer lock);
  // every other use holds the reader lock. Null: there was no store and no room to create one.
  mutable absl::Mutex mu;
  std::unique_ptr<rocksdb::DB> db ABSL_GUARDED_BY(mu);
  std::atomic<bool> read_only{false};
  std::atomic<bool> full{false};
  std::atomic<uint64_t> free_bytes{UINT64_MAX};

  absl::Status FullError() const {
    return absl::ResourceExhaustedError("data disk full: " + MiB(free_bytes.load()) + " free in " +
                                        dir + ", below disk_reserve_bytes (" + MiB(reserve) + ")");
  }
  // Refuses a write that could meet a full disk.
  absl::Status CheckWritable() {
    if (read_only.load())
      return absl::UnavailableError("the state store opened read-only on a full disk (" + dir +
                                    "); it takes writes again once there is room");
    if (reserve > 0) {
      free_bytes = FreeBytes(dir);
      full = free_bytes.load() < reserve;
      if (full.load()) return FullError();
    }
    return absl::OkStatus();
  }
  absl::Status WriteBatch(rocksdb::WriteBatch& batch, bool sync) {
    absl::ReaderMutexLock lk(&mu);
    if (auto s = CheckWritable(); !s.ok()) {
      batch.Clear();
      return s;
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    const rocksdb::Status s = db->Write(wo, &batch);
    batch.Clear();
    if (s.IsNoSpace()) {
      full = true;
      return absl::ResourceExhaustedError("data disk full: state store write failed: " +
                                          s.ToString());
    }
    if (!s.ok()) return absl::InternalError("state store write failed: " + s.ToString());
    return absl::OkStatus();
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() {
  // Closing writes (the log's tail, a manifest), and Debian's RocksDB aborts on a write that
  // fails for want of space. On a full disk the store is left open for the process's exit to
  // release: every acknowledged write is in the log already. It stays reachable from here, so
  // that it is not taken for a leak.
  if (impl_->db && !impl_->read_only.load() && impl_->reserve > 0 &&
      FreeBytes(impl_->dir) < impl_->reserve) {
    ABSL_CONST_INIT static absl::Mutex mu(absl::kConstInit);
    static auto* left_open = new std::vector<rocksdb::DB*>;
    absl::MutexLock lk(&mu);
    left_open->push_back(impl_->db.release());
  }
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir, uint64_t reserve_bytes) {
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
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->reserve = reserve_bytes;
  impl->free_bytes = FreeBytes(SpaceDir(dir));
  rocksdb::DB* db = nullptr;
  if (reserve_bytes > 0 && impl->free_bytes.load() < reserve_bytes) {
    // Opening for writing writes a new log and manifest: on a full disk, open read-only.
    impl->read_only = impl->full = true;
    absl::WriterMutexLock lk(&impl->mu);
    if (rocksdb::DB::OpenForReadOnly(options, dir, &db).ok()) impl->db.reset(db);
    impl->options = options;
    return std::unique_ptr<Store>(new Store(std::move(impl)));
  }
  std::shared_ptr<rocksdb::Logger> inner;
  if (rocksdb::CreateLoggerFromOptions(dir, options, &inner).ok() && inner) {
    impl->log = std::make_shared<RecoveryLog>(std::move(inner));
    options.info_log = impl->log;
  }
  const rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok())
    return absl::UnavailableError("cannot open the state store in " + dir + ": " + s.ToString());
  {
    absl::WriterMutexLock lk(&impl->mu);
    impl->db.reset(db);
  }
  impl->options = options;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

void Store::PutRecord(Batch& b, const Histogram& h, const Verdict& v, int64_t received_unix_ms) {
  b.impl_->batch.Put(Key('h', h.monitor, h.run, h.lumisection),
                     EncodeRecord(h, v, received_unix_ms));
}

void Store::PutLabel(Batch& b, const Label& label) {
  b.impl_->batch.Put(Key('l', label.monitor, label.run, label.lumisection), EncodeLabel(label));
}

void Store::PutMeta(Batch& b, const std::string& monitor, const std::string& json) {
  b.impl_->batch.Put("m|" + monitor, json);
}

void Store::DeleteRecord(Batch& b, const std::string& monitor, uint64_t run, uint64_t ls) {
  b.impl_->batch.Delete(Key('h', monitor, run, ls));
}

void Store::DeleteMonitor(Batch& b, const std::string& monitor) {
  for (char kind : {'h', 'l'}) {
    std::string end = Prefix(kind, monitor);
    end.back() = '|' + 1;  // just past every key of the prefix
    b.impl_->batch.DeleteRange(Prefix(kind, monitor), end);
  }
  b.impl_->batch.Delete("m|" + monitor);
}

absl::Status Store::Commit(Batch& b) {
  if (b.empty()) return absl::OkStatus();
  return impl_->WriteBatch(b.impl_->batch, /*sync=*/true);
}

absl::Status Store::Write(Batch& b) {
  if (b.empty()) return absl::OkStatus();
  return impl_->WriteBatch(b.impl_->batch, /*sync=*/false);
}

absl::Status Store::Sync() {
  absl::ReaderMutexLock lk(&impl_->mu);
  if (impl_->read_only.load()) return absl::OkStatus();  // nothing was written
  const rocksdb::Status s = impl_->db->SyncWAL();
  if (!s.ok()) return absl::InternalError("state store sync failed: " + s.ToString());
  return absl::OkStatus();
}

uint64_t Store::CheckSpace() {
  const uint64_t free = FreeBytes(SpaceDir(impl_->dir));
  impl_->free_bytes = free;
  impl_->full = impl_->reserve > 0 && free < impl_->reserve;
  if (impl_->full.load() || !impl_->read_only.load()) return free;
  // Room again: reopen for writing.
  absl::WriterMutexLock lk(&impl_->mu);
  if (!impl_->read_only.load()) return free;
  impl_->db.reset();
  rocksdb::Options options = impl_->options;
  std::shared_ptr<rocksdb::Logger> inner;
  if (rocksdb::CreateLoggerFromOptions(impl_->dir, options, &inner).ok() && inner) {
    impl_->log = std::make_shared<RecoveryLog>(std::move(inner));
    options.info_log = impl_->log;
  }
  rocksdb::DB* db = nullptr;
  if (rocksdb::DB::Open(options, impl_->dir, &db).ok()) {
    impl_->db.reset(db);
    impl_->read_only = false;
  } else if (rocksdb::DB::OpenForReadOnly(impl_->options, impl_->dir, &db).ok()) {
    impl_->db.reset(db);
  }
  return free;
}

absl::Status Store::WritableStatus() const {
  if (impl_->read_only.load())
    return absl::UnavailableError("the state store opened read-only on a full disk (" + impl_->dir +
                                  "); it takes writes again once there is room");
  if (impl_->full.load()) return impl_->FullError();
  return absl::OkStatus();
}

absl::StatusOr<Record> Store::GetRecord(const std::string& monitor, uint64_t run,
                                        uint64_t ls) const {
  absl::ReaderMutexLock lk(&impl_->mu);
  if (!impl_->db) return absl::NotFoundError("no stored histogram");
  std::string value;
  const rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), Key('h', monitor, run, ls), &value);
  if (s.IsNotFound()) return absl::NotFoundError("no stored histogram");
  if (!s.ok()) return absl::DataLossError("the stored histogram cannot be read: " + s.ToString());
  Record rec;
  const absl::Status decoded = DecodeRecord(value, monitor, run, ls, rec);
  if (!decoded.ok())
    return absl::DataLossError("the stored histogram cannot be decoded: " +
                               std::string(decoded.message()));
  return rec;
}

absl::Status Store::ForEachRecord(const std::string& monitor,
                                  const std::function<bool(const Record&)>& fn) const {
  const std::string prefix = Prefix('h', monitor);
  absl::ReaderMutexLock lk(&impl_->mu);
  if (!impl_->db) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  Record rec;
  size_t unreadable = 0;
  std::string first_error;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() != prefix.size() + MonitorPrefix::kSuffix) {  // not a histogram key of it
      ++unreadable;
      continue;
    }
    const absl::Status decoded = DecodeRecord(
        std::string_view(it->value().data(), it->value().size()), monitor,
        ReadBe64(key.data() + prefix.size()), ReadBe64(key.data() + prefix.size() + 8), rec);
    if (!decoded.ok()) {
      if (unreadable++ == 0) first_error = std::string(decoded.message());
      continue;
    }
    if (!fn(rec)) break;
  }
  return ScanStatus(*it, unreadable, "histograms of '" + monitor + "'", first_error);
}

absl::Status Store::ForEachLabel(const std::string& monitor,
                                 const std::function<void(const Label&)>& fn) const {
  const std::string prefix = Prefix('l', monitor);
  absl::ReaderMutexLock lk(&impl_->mu);
  if (!impl_->db) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  Label label;
  size_t unreadable = 0;
  std::string first_error;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const rocksdb::Slice key = it->key();
    absl::Status decoded = absl::DataLossError("a label key of the wrong length");
    if (key.size() == prefix.size() + MonitorPrefix::kSuffix)
      decoded = DecodeLabel(std::string_view(it->value().data(), it->value().size()), monitor,
                            ReadBe64(key.data() + prefix.size()),
                            ReadBe64(key.data() + prefix.size() + 8), label);
    if (decoded.ok())
      fn(label);
    else if (unreadable++ == 0)
      first_error = std::string(decoded.message());
  }
  return ScanStatus(*it, unreadable, "labels of '" + monitor + "'", first_error);
}

absl::Status Store::ForEachMeta(
    const std::function<void(const std::string&, const std::string&)>& fn) const {
  absl::ReaderMutexLock lk(&impl_->mu);
  if (!impl_->db) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("m|"); it->Valid() && it->key().starts_with("m|"); it->Next())
    fn(it->key().ToString().substr(2), it->value().ToString());
  return ScanStatus(*it, 0, "monitor states");
}

std::vector<std::string> Store::RecoveryReports() const {
  absl::ReaderMutexLock lk(&impl_->mu);
  return impl_->log ? impl_->log->Reports() : std::vector<std::string>{};
}

}  // namespace histguard::server
