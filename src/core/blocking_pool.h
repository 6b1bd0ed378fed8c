// A pool of threads for blocking work (store calls), so that the I/O threads never wait on a
// disk or a socket they do not own. Run() is awaited from a coroutine: the work runs on the pool
// and the coroutine resumes on its own executor. The pool's threads run at a lower scheduling
// priority (nice +5) than the I/O threads: on a busy machine, CPU-heavy work here (a listing of
// 1000 connections) yields to the cheap requests the I/O threads answer inline, instead of
// starving them (measured by bench/isolation.py). How busy it is goes to a PoolObserver, the
// server's metrics in production. Thread-safe.
#pragma once

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/pool_observer.h"

namespace connreg {

class BlockingPool {
 public:
  static constexpr int kNice = 5;

  // `observer`, when given, must outlive the pool.
  explicit BlockingPool(std::size_t threads, PoolObserver* observer = nullptr)
      : observer_(observer), work_(ctx_.get_executor()) {
    if (observer_ != nullptr) observer_->SetSize(static_cast<long>(threads));
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        // Per thread on Linux; failing to lower the priority only loses the preference.
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kNice);
        ctx_.run();
      });
    }
  }
  ~BlockingPool() { Join(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `fn()` on the pool; the awaiting coroutine resumes on its own executor with the result.
  // `fn` must not throw.
  template <class Fn>
  auto Run(Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn>> {
    using R = std::invoke_result_t<Fn>;
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(R)>(
        [this, fn = std::move(fn)](auto handler) mutable {
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(
              ctx_, [this, fn = std::move(fn), handler = std::move(handler), ex]() mutable {
                if (observer_ != nullptr) observer_->AddInUse(1);
                R result = fn();
                if (observer_ != nullptr) observer_->AddInUse(-1);
                boost::asio::post(
                    ex, [handler = std::move(handler), result = std::move(result)]() mutable {
                      std::move(handler)(std::move(result));
                    });
              });
        },
        boost::asio::use_awaitable);
  }

  // Lets queued work finish, then joins the threads. Idempotent.
  void Join() {
    work_.reset();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  boost::asio::io_context::executor_type executor() { return ctx_.get_executor(); }

 private:
  PoolObserver* const observer_;
  boost::asio::io_context ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

}  // namespace connreg
