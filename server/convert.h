// Between the daemon's types (server/domain.h) and the public API's messages (histguard/v1):
// the one place that knows both, used by the Ingest and Control services and the console's API.
// Stateless and thread-safe.
#pragma once

#include <optional>

#include "histguard/v1/histguard.pb.h"
#include "server/domain.h"

namespace histguard::server {

v1::Quality ToProto(Quality q);
// Nullopt for QUALITY_UNSPECIFIED and values this build does not know.
std::optional<Quality> FromProto(v1::Quality q);

// A histogram as Validate (server/validation.h) passed it.
Histogram FromProto(const v1::Histogram& h);
void ToProto(const Histogram& h, v1::Histogram* out);

void ToProto(const Verdict& v, v1::Verdict* out);
// Nullopt when its quality is unspecified or unknown.
std::optional<Verdict> FromProto(const v1::Verdict& v);
// The verdict on `h` before it is judged: whose it is (the name cut to its longest valid length,
// as a rejected one may be anything), REJECTED until scoring says otherwise.
Verdict VerdictFor(const v1::Histogram& h);

// A label whose quality is GOOD or BAD (nullopt otherwise).
std::optional<Label> FromProto(const v1::LabelRequest& l);
void ToProto(const Label& l, v1::LabelRequest* out);

// The histogram and verdict of an inspection; the caller adds the expectation, the window and
// the label.
void ToProto(const Record& r, v1::Inspection* out);
// A record kept as an inspection (the store's oldest schemas); nullopt when its verdict's
// quality is not one this build knows.
std::optional<Record> FromProto(const v1::Inspection& in);

void ToProto(const MonitorStatus& s, v1::MonitorInfo* out);
void ToProto(const MonitorStatus& s, v1::MonitorSummary* out);

}  // namespace histguard::server
