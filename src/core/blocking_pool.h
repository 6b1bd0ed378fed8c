// A pool of threads for blocking work (database calls, later warehouse drivers), so that the
// I/O threads never wait on a disk or a socket they do not own. Run() is awaited from a
// coroutine: the work runs on the pool and the coroutine resumes on its own executor.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "metrics/metrics.h"

namespace connreg {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads) : pool_(threads) {
    metrics::SetPoolSize(static_cast<long>(threads));
  }
  ~BlockingPool() { Join(); }

  // Runs `fn()` on the pool; the awaiting coroutine resumes on its own executor with the result.
  // `fn` must not throw.
  template <class Fn>
  auto Run(Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn>> {
    using R = std::invoke_result_t<Fn>;
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(R)>(
        [this, fn = std::move(fn)](auto handler) mutable {
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(pool_, [fn = std::move(fn), handler = std::move(handler),
                                    ex]() mutable {
            metrics::AddPoolBusy(1);
            R result = fn();
            metrics::AddPoolBusy(-1);
            boost::asio::post(ex, [handler = std::move(handler),
                                   result = std::move(result)]() mutable {
              std::move(handler)(std::move(result));
            });
          });
        },
        boost::asio::use_awaitable);
  }

  void Join() { pool_.join(); }

  boost::asio::thread_pool::executor_type executor() { return pool_.get_executor(); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace connreg

