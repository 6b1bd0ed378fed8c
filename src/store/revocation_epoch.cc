#include "store/revocation_epoch.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace connreg::store {
namespace {

// One page: what every process maps. Only the first 8 bytes are used.
constexpr std::size_t kFileSize = 4096;

std::unique_ptr<RevocationEpoch> Unavailable(const std::string& path, const char* step, int err) {
  log::Event(log::Level::kWarn, "token_cache_off",
             {{"file", path},
              {"detail", std::string(step) + ": " + std::strerror(err)},
              {"effect", "every request resolves its token in the store"}});
  return nullptr;
}

}  // namespace

std::unique_ptr<RevocationEpoch> RevocationEpoch::OpenBeside(const std::string& database_path) {
  if (database_path.empty() || database_path == ":memory:" || database_path.starts_with("file:")) {
    return nullptr;  // no file to put it beside; such a database is not shared either
  }
  const std::string path = database_path + "-epoch";
  struct stat db {};
  const bool have_db = ::stat(database_path.c_str(), &db) == 0;
  const mode_t mode = have_db ? (db.st_mode & 0666) : 0600;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd >= 0) {
    // As SQLite does for -wal and -shm: the database's mode whatever the umask, and its owner
    // when root creates the file (an operator's CLI), so the server's user can still open it.
    (void)::fchmod(fd, mode);
    if (have_db && ::geteuid() == 0) (void)::fchown(fd, db.st_uid, db.st_gid);
  } else if (errno == EEXIST) {
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) return Unavailable(path, "open", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Unavailable(path, "fstat", err);
  }
  // Only ever grown, to one size: two processes creating the file at once both set that size,
  // and growing never changes the bytes already there (a counter another process bumped).
  if (st.st_size < static_cast<off_t>(kFileSize) &&
      ::ftruncate(fd, static_cast<off_t>(kFileSize)) != 0) {
    const int err = errno;
    ::close(fd);
    return Unavailable(path, "ftruncate", err);
  }
  void* mapping = ::mmap(nullptr, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping stays valid
  if (mapping == MAP_FAILED) return Unavailable(path, "mmap", err);
  return std::unique_ptr<RevocationEpoch>(new RevocationEpoch(mapping, kFileSize));
}

RevocationEpoch::RevocationEpoch(void* mapping, std::size_t size)
    : mapping_(mapping), size_(size), word_(static_cast<std::uint64_t*>(mapping)) {}

RevocationEpoch::~RevocationEpoch() { ::munmap(mapping_, size_); }

}  // namespace connreg::store
