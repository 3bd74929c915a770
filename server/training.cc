#include "server/training.h"

#include <boost/asio/post.hpp>
#include <chrono>
#include <iostream>

#include "models/trainer.h"

namespace histguard::server {

TrainingScheduler::TrainingScheduler(const Config& config, Metrics& metrics)
    : config_(config), metrics_(metrics), pool_(static_cast<size_t>(config.train_threads)) {}

TrainingScheduler::~TrainingScheduler() { Stop(); }

void TrainingScheduler::Schedule(Monitor* monitor, std::vector<std::vector<float>> samples,
                                 std::string reason) {
  {
    std::lock_guard lk(idle_mu_);
    ++pending_;
  }
  boost::asio::post(pool_, [this, monitor, samples = std::move(samples),
                            reason = std::move(reason)]() mutable {
    models::TrainOptions opt;
    opt.time_budget_seconds = config_.train_budget_seconds;
    opt.cancel = &cancel_;
    opt.seed = std::hash<std::string>{}(monitor->name);
    std::vector<uint32_t> shape;
    {
      std::lock_guard lk(monitor->mu);
      shape = monitor->shape;
    }
    models::TrainOutcome outcome;
    if (!cancel_.load()) outcome = models::Train(samples, shape, opt);
    metrics_.training_duration.Observe(outcome.report.seconds);
    {
      std::lock_guard lk(monitor->mu);
      monitor->training = false;
      if (outcome.model) {
        outcome.model->version = ++monitor->trained_versions;
        monitor->model = std::shared_ptr<const models::Model>(std::move(outcome.model));
        monitor->last_training_error.clear();
        const double now = std::chrono::duration<double>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
        monitor->series.model_version->Set(static_cast<double>(monitor->model->version));
        monitor->series.last_trained_time->Set(now);
      } else {
        monitor->last_training_error = outcome.error;
        monitor->failed_at_window = monitor->window.size();
      }
    }
    if (outcome.error.empty()) {
      metrics_.TrainingRuns("accepted").Increment();
      std::clog << "histguardd: trained " << monitor->name << " (" << reason << ") on "
                << samples.size() << " histograms in " << outcome.report.seconds
                << " s, holdout deviance " << outcome.report.holdout_deviance << "\n";
    } else if (!cancel_.load()) {
      metrics_.TrainingRuns("failed").Increment();
      std::clog << "histguardd: training " << monitor->name << " failed: " << outcome.error << "\n";
    }
    {
      std::lock_guard lk(idle_mu_);
      --pending_;
    }
    idle_cv_.notify_all();
  });
}

void TrainingScheduler::WaitIdle() {
  std::unique_lock lk(idle_mu_);
  idle_cv_.wait(lk, [this] { return pending_ == 0; });
}

void TrainingScheduler::Stop() {
  cancel_ = true;
  pool_.join();
}

}  // namespace histguard::server
