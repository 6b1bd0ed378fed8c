#include "crypto/master_key_source.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "crypto/encoding.h"
#include "crypto/random.h"

namespace connreg::crypto {
namespace {

std::shared_ptr<const MasterKey> FromBase64(std::string text, const std::string& where) {
  auto raw = Base64Decode(text);
  sodium_memzero(text.data(), text.size());
  if (!raw) throw std::runtime_error(where + " is not valid base64");
  if (raw->size() != MasterKey::kBytes) {
    sodium_memzero(raw->data(), raw->size());
    throw std::runtime_error(where + " must decode to 32 bytes (a 256-bit key), not " +
                             std::to_string(raw->size()));
  }
  auto key = std::make_shared<const MasterKey>(*raw);
  sodium_memzero(raw->data(), raw->size());
  return key;
}

// One or more base64 keys separated by newlines, commas or spaces; the first is current.
Keyring ParseKeys(std::string text, const std::string& where) {
  Keyring ring;
  std::string item;
  auto flush = [&] {
    if (item.empty()) return;
    auto key = FromBase64(std::move(item), where);
    item.clear();
    if (!ring.current) {
      ring.current = std::move(key);
    } else if (key->id() != ring.current->id()) {
      ring.previous.push_back(std::move(key));
    }
  };
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == ',' || c == ' ' || c == '\t') {
      flush();
    } else {
      item += c;
    }
  }
  flush();
  sodium_memzero(text.data(), text.size());
  if (!ring.current) throw std::runtime_error(where + " holds no key");
  return ring;
}

// Writes all of `contents` to `fd` (made mode 0600), syncs and closes it.
void WriteAndClose(int fd, const std::string& path, const std::string& contents) {
  ::fchmod(fd, 0600);
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot write " + path + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(err));
  }
  if (::close(fd) != 0) {
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
}

// Writes `contents` to a new private file beside `path` (same directory, so it can be linked or
// renamed onto `path`) and returns its name.
std::string WriteTempBeside(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  try {
    WriteAndClose(fd, tmp, contents);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  return tmp;
}

// Makes a new or replaced name in `path`'s directory survive a crash.
void SyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// Creates `path` holding `contents` unless it already exists, so that no reader ever sees it
// half written: the contents go to a private temporary file first, which is then hard-linked
// into place (link() fails when `path` exists). Returns false when another process created
// `path` first; two nodes starting together on one empty store thus agree on one key.
bool PublishNewPrivateFile(const std::string& path, const std::string& contents) {
  const std::string tmp = WriteTempBeside(path, contents);
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc == 0) {
    SyncDirectoryOf(path);
    return true;
  }
  if (err == EEXIST) return false;
  throw std::runtime_error("cannot create " + path + ": " + std::strerror(err));
}

}  // namespace

void WritePrivateFile(const std::string& path, const std::string& contents, bool overwrite) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  WriteAndClose(fd, path, contents);
}

Keyring ReadKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read master key file " + path + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return ParseKeys(std::move(text), "master key file " + path);
}

void WriteKeyFile(const std::string& path, const Keyring& keys) {
  std::string text = keys.current->ExportBase64() + "\n";
  for (const auto& k : keys.previous) text += k->ExportBase64() + "\n";
  const std::string tmp = WriteTempBeside(path, text);
  sodium_memzero(text.data(), text.size());
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot replace " + path + ": " + std::strerror(err));
  }
  SyncDirectoryOf(path);
}

LoadedKeys LoadMasterKeys(const MasterKeySettings& s) {
  EnsureSodium();
  if (!s.key_base64.empty()) return {ParseKeys(s.key_base64, "CONNREG_MASTER_KEY"), ""};
  if (!s.key_file.empty()) return {ReadKeyFile(s.key_file), s.key_file};
  if (s.default_file.empty()) {
    throw std::runtime_error(
        "no master key: set CONNREG_MASTER_KEY (base64 of 32 bytes) or CONNREG_MASTER_KEY_FILE");
  }
  if (std::filesystem::exists(s.default_file)) return {ReadKeyFile(s.default_file), s.default_file};
  if (!s.store_is_empty) {
    throw std::runtime_error("master key file " + s.default_file +
                             " is missing, but the store already holds data sealed under a "
                             "master key: restore the file or set CONNREG_MASTER_KEY");
  }
  std::string raw(MasterKey::kBytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  Keyring ring{std::make_shared<const MasterKey>(raw), {}};
  sodium_memzero(raw.data(), raw.size());
  std::string text = ring.current->ExportBase64() + "\n";
  bool created = PublishNewPrivateFile(s.default_file, text);
  sodium_memzero(text.data(), text.size());
  if (!created) return {ReadKeyFile(s.default_file), s.default_file};  // another node won
  return {std::move(ring), s.default_file};
}

}  // namespace connreg::crypto
