// Restore: rebuilds every monitor from the store and the model files at start-up, so a restarted
// daemon resumes with the same model versions and training windows (no retraining from scratch,
// no learning phase again) and every acknowledged histogram is back in its window.
#pragma once

#include <string>

#include "server/config.h"
#include "server/model_files.h"
#include "server/monitors.h"
#include "server/store.h"

namespace histguard::server {

struct RestoreReport {
  size_t monitors = 0, models = 0, histograms = 0;
  size_t model_load_failures = 0;     // model files refused (each is also in problems)
  size_t store_errors = 0;            // damage found in the state store (each is also in problems)
  std::vector<std::string> problems;  // monitors that could not be restored fully, and why
};

RestoreReport RestoreMonitors(const Config& config, Store& store, const ModelFiles& files,
                              MonitorRegistry& registry);

}  // namespace histguard::server
