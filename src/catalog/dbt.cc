#include "catalog/dbt.h"

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/json/basic_parser_impl.hpp>

namespace connreg::catalog {
namespace {

constexpr std::size_t kBlockSize = 64 * 1024;
// JSON nesting the reader accepts: dbt's own shapes are about 6 deep; `meta` and `config` blocks
// are the user's, and 64 leaves them room while a pathological nesting is a clear error.
constexpr std::size_t kMaxJsonDepth = 64;
// A name or a description kept: longer is an error, not a truncation.
constexpr std::size_t kMaxKeptString = 1 << 20;
// What one kept description costs beyond its characters (map node, vectors, strings).
constexpr std::uint64_t kEntryOverhead = 192;

std::string Mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// ---- the descriptions kept -----------------------------------------------------------------

// Keeps one description per (table, column), a manifest's over a catalog's, within max_kept.
class Collector {
 public:
  explicit Collector(std::uint64_t max_kept) : max_kept_(max_kept) {}

  // False when the kept descriptions would pass the limit.
  bool Add(const domain::CatalogPath& path, const std::string& column,
           const std::string& description, bool from_manifest) {
    if (description.empty()) return true;
    auto [it, inserted] = kept_.try_emplace({path, column});
    Kept& k = it->second;
    if (!inserted && k.from_manifest && !from_manifest) return true;
    if (inserted) {
      bytes_ += kEntryOverhead + column.size();
      for (const auto& name : path) bytes_ += name.size();
    }
    bytes_ += description.size();
    bytes_ -= k.description.size();
    k.description = description;
    k.from_manifest = from_manifest;
    return bytes_ <= max_kept_;
  }

  std::vector<store::DbtDescription> Take() {
    std::vector<store::DbtDescription> out;
    out.reserve(kept_.size());
    for (auto& [key, k] : kept_) {
      out.push_back({key.first, key.second, std::move(k.description)});
    }
    kept_.clear();
    return out;
  }

 private:
  struct Kept {
    std::string description;
    bool from_manifest = false;
  };
  std::uint64_t max_kept_;
  std::uint64_t bytes_ = 0;
  std::map<std::pair<domain::CatalogPath, std::string>, Kept> kept_;
};

// ---- manifest.json and catalog.json, streamed ------------------------------------------------

enum class ArtifactFile { kManifest, kCatalog };

std::string_view FileName(ArtifactFile f) {
  return f == ArtifactFile::kManifest ? "manifest.json" : "catalog.json";
}

// What an object of the document is, by where it sits. Everything else is kSkip: its values are
// parsed (the parser validates them) but never kept.
enum class Role {
  kRoot,      // the document
  kSection,   // root.nodes, root.sources: objects keyed by dbt's unique_id
  kNode,      // one model, seed, snapshot or source (or, in the manifest, a test to ignore)
  kMetadata,  // catalog.json: node.metadata {database, schema, name, comment}
  kColumns,   // node.columns: objects keyed by column name
  kColumn,    // one column
  kSkip,
};

// The Boost.JSON basic_parser handler: tracks where it is, keeps the few strings dbt's
// descriptions need, and hands each finished node to the Collector. Memory: one node at a time.
class ArtifactHandler {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  ArtifactHandler(ArtifactFile file, int path_depth, Collector& out)
      : file_(file), path_depth_(path_depth), out_(out) {}

  // Set when a callback failed for a reason of ours (rather than the JSON's syntax).
  std::optional<Error> failure;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }

  bool on_object_begin(boost::system::error_code&) {
    target_ = nullptr;
    Role role = Role::kSkip;
    if (stack_.empty()) {
      role = Role::kRoot;
    } else {
      switch (stack_.back()) {
        case Role::kRoot:
          if (key_ == "nodes" || key_ == "sources") role = Role::kSection;
          break;
        case Role::kSection:
          role = Role::kNode;
          node_ = Node{};
          break;
        case Role::kNode:
          if (key_ == "columns") role = Role::kColumns;
          if (key_ == "metadata" && file_ == ArtifactFile::kCatalog) role = Role::kMetadata;
          break;
        case Role::kColumns:
          role = Role::kColumn;
          column_ = Column{};
          column_.key = key_;
          break;
        default: break;
      }
    }
    stack_.push_back(role);
    key_.clear();
    key_done_ = false;
    return true;
  }

  bool on_object_end(std::size_t, boost::system::error_code& ec) {
    const Role role = stack_.back();
    stack_.pop_back();
    if (role == Role::kColumn) {
      std::string& name = column_.name.empty() ? column_.key : column_.name;
      std::string& text = file_ == ArtifactFile::kManifest ? column_.description : column_.comment;
      if (!text.empty()) node_.columns.emplace_back(std::move(name), std::move(text));
    } else if (role == Role::kNode) {
      return Emit(ec);
    }
    return true;
  }

  bool on_array_begin(boost::system::error_code&) {
    target_ = nullptr;
    stack_.push_back(Role::kSkip);
    return true;
  }
  bool on_array_end(std::size_t, boost::system::error_code&) {
    stack_.pop_back();
    return true;
  }

  bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
    return !KeepsKeys() || Append(key_, s, ec);
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
    if (!KeepsKeys()) return true;
    if (!Append(key_, s, ec)) return false;
    target_ = Target();
    if (target_ != nullptr) target_->clear();
    key_done_ = true;
    return true;
  }

  bool on_string_part(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
    return target_ == nullptr || Append(*target_, s, ec);
  }
  bool on_string(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
    if (target_ == nullptr) return true;
    const bool ok = Append(*target_, s, ec);
    target_ = nullptr;
    return ok;
  }

  bool on_number_part(boost::json::string_view, boost::system::error_code&) { return Scalar(); }
  bool on_int64(std::int64_t, boost::json::string_view, boost::system::error_code&) {
    return Scalar();
  }
  bool on_uint64(std::uint64_t, boost::json::string_view, boost::system::error_code&) {
    return Scalar();
  }
  bool on_double(double, boost::json::string_view, boost::system::error_code&) { return Scalar(); }
  bool on_bool(bool, boost::system::error_code&) { return Scalar(); }
  bool on_null(boost::system::error_code&) { return Scalar(); }
  bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }

 private:
  struct Column {
    std::string key, name, description, comment;
  };
  struct Node {
    std::string resource_type, database, schema, alias, name, identifier, description;
    // catalog.json's metadata
    std::string meta_database, meta_schema, meta_name, meta_comment;
    std::vector<std::pair<std::string, std::string>> columns;  // name, description
  };

  // A key is needed where it names a field we keep or a column; section keys (unique ids) and
  // everything skipped are not accumulated.
  bool KeepsKeys() const {
    if (stack_.empty()) return false;
    const Role r = stack_.back();
    return r != Role::kSection && r != Role::kSkip;
  }

  // Where the value of the current key goes, or nullptr.
  std::string* Target() {
    switch (stack_.back()) {
      case Role::kNode:
        if (file_ == ArtifactFile::kCatalog) return nullptr;
        if (key_ == "resource_type") return &node_.resource_type;
        if (key_ == "database") return &node_.database;
        if (key_ == "schema") return &node_.schema;
        if (key_ == "alias") return &node_.alias;
        if (key_ == "name") return &node_.name;
        if (key_ == "identifier") return &node_.identifier;
        if (key_ == "description") return &node_.description;
        return nullptr;
      case Role::kMetadata:
        if (key_ == "database") return &node_.meta_database;
        if (key_ == "schema") return &node_.meta_schema;
        if (key_ == "name") return &node_.meta_name;
        if (key_ == "comment") return &node_.meta_comment;
        return nullptr;
      case Role::kColumn:
        if (key_ == "name") return &column_.name;
        if (key_ == "description" && file_ == ArtifactFile::kManifest) return &column_.description;
        if (key_ == "comment" && file_ == ArtifactFile::kCatalog) return &column_.comment;
        return nullptr;
      default: return nullptr;
    }
  }

  // A key is complete once on_key ran; the next key starts afresh.
  bool Append(std::string& to, boost::json::string_view s, boost::system::error_code& ec) {
    if (&to == &key_ && key_done_) {
      key_.clear();
      key_done_ = false;
    }
    if (to.size() + s.size() > kMaxKeptString) {
      return Fail(ec, std::string(FileName(file_)) + ": a name or description is longer than " +
                          Mib(kMaxKeptString));
    }
    if (s.find('\0') != boost::json::string_view::npos) {
      return Fail(ec, std::string(FileName(file_)) +
                          ": a name or description contains a NUL character (\\u0000)");
    }
    to.append(s.data(), s.size());
    return true;
  }

  bool Scalar() {
    target_ = nullptr;  // a number, a boolean or null where a string was wanted: nothing kept
    return true;
  }

  bool Fail(boost::system::error_code& ec, std::string message) {
    failure = Error::BadRequest(std::move(message));
    ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
    return false;
  }

  // The node's path in the connection's shape, or empty when dbt does not name it fully.
  domain::CatalogPath PathOf(const std::string& database, const std::string& schema,
                             const std::string& name) const {
    if (schema.empty() || name.empty()) return {};
    if (path_depth_ == 2) return {schema, name};
    if (path_depth_ == 3 && !database.empty()) return {database, schema, name};
    return {};
  }

  bool Emit(boost::system::error_code& ec) {
    domain::CatalogPath path;
    std::string* description = nullptr;
    if (file_ == ArtifactFile::kManifest) {
      const std::string& type = node_.resource_type;
      if (type == "source") {
        path = PathOf(node_.database, node_.schema,
                      node_.identifier.empty() ? node_.name : node_.identifier);
      } else if (type == "model" || type == "seed" || type == "snapshot") {
        path = PathOf(node_.database, node_.schema, node_.alias.empty() ? node_.name : node_.alias);
      }
      description = &node_.description;
    } else {
      path = PathOf(node_.meta_database, node_.meta_schema, node_.meta_name);
      description = &node_.meta_comment;
    }
    if (path.empty()) return true;
    const bool from_manifest = file_ == ArtifactFile::kManifest;
    bool ok = out_.Add(path, "", *description, from_manifest);
    for (const auto& [column, text] : node_.columns) {
      ok = ok && out_.Add(path, column, text, from_manifest);
    }
    if (!ok) return Fail(ec, "the artifacts hold more descriptions than the limit allows");
    return true;
  }

  ArtifactFile file_;
  int path_depth_;
  Collector& out_;
  std::vector<Role> stack_;
  std::string key_;
  bool key_done_ = false;
  std::string* target_ = nullptr;
  Node node_;
  Column column_;
};

// One JSON file of the archive, fed as its bytes come out of libarchive.
class JsonFileReader {
 public:
  JsonFileReader(ArtifactFile file, int path_depth, Collector& out)
      : file_(file), parser_(Options(), file, path_depth, out) {}

  Status Write(const char* data, std::size_t size, bool more) {
    boost::system::error_code ec;
    const std::size_t used = parser_.write_some(more, data, size, ec);
    if (!ec) {
      offset_ += used;
      return OkStatus();
    }
    if (parser_.handler().failure) return *parser_.handler().failure;
    std::string what = ec == boost::json::error::too_deep
                           ? "nests objects or arrays deeper than " + std::to_string(kMaxJsonDepth)
                           : ec.message();
    return Error::BadRequest(std::string(FileName(file_)) + " is not valid JSON at byte " +
                             std::to_string(offset_ + used) + ": " + what);
  }

 private:
  static boost::json::parse_options Options() {
    boost::json::parse_options o;
    o.max_depth = kMaxJsonDepth;
    return o;
  }

  ArtifactFile file_;
  boost::json::basic_parser<ArtifactHandler> parser_;
  std::uint64_t offset_ = 0;
};

// ---- the archive ---------------------------------------------------------------------------

struct ArchiveInput {
  const ReadPiece& read;
  std::uint64_t max_compressed;
  std::uint64_t compressed = 0;
  std::optional<Error> error;  // why the read callback stopped, when it was our reason
};

la_ssize_t ReadCallback(struct archive* a, void* data, const void** buffer) {
  auto& in = *static_cast<ArchiveInput*>(data);
  auto piece = in.read();
  if (!piece) {
    in.error = std::move(piece).error();
    archive_set_error(a, EIO, "the upload could not be read");
    return -1;
  }
  in.compressed += piece->size();
  if (in.compressed > in.max_compressed) {
    in.error = Error{ErrorCode::kPayloadTooLarge,
                     "the artifacts archive is larger than " + Mib(in.max_compressed)};
    archive_set_error(a, EFBIG, "the archive is too large");
    return -1;
  }
  *buffer = piece->data();
  return static_cast<la_ssize_t>(piece->size());
}

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// The entry's name without leading "./", or an error naming what is wrong with it.
Result<std::string> CheckedName(struct archive_entry* entry) {
  const char* raw = archive_entry_pathname(entry);
  if (raw == nullptr || *raw == '\0') {
    return Error::BadRequest("the archive holds an entry without a readable name");
  }
  std::string_view name(raw);
  const std::string quoted = "\"" + std::string(name.substr(0, 200)) + "\"";
  if (name.front() == '/') {
    return Error::BadRequest("the archive entry " + quoted + " has an absolute path");
  }
  for (std::string_view rest = name; !rest.empty();) {
    const std::size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") {
      return Error::BadRequest("the archive entry " + quoted + " has a \"..\" component");
    }
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  }
  const auto type = archive_entry_filetype(entry);
  if (archive_entry_hardlink(entry) != nullptr) {
    return Error::BadRequest("the archive entry " + quoted + " is a hard link; links are refused");
  }
  if (type == AE_IFLNK) {
    return Error::BadRequest("the archive entry " + quoted +
                             " is a symbolic link; links are refused");
  }
  if (type != AE_IFREG && type != AE_IFDIR) {
    return Error::BadRequest("the archive entry " + quoted +
                             " is not a regular file or a directory");
  }
  if (archive_entry_sparse_count(entry) > 0) {
    return Error::BadRequest("the archive entry " + quoted + " is a sparse file");
  }
  while (name.starts_with("./")) name.remove_prefix(2);
  return std::string(name);
}

std::optional<ArtifactFile> ArtifactOf(std::string_view name) {
  if (name.starts_with("target/")) name.remove_prefix(7);
  if (name == "manifest.json") return ArtifactFile::kManifest;
  if (name == "catalog.json") return ArtifactFile::kCatalog;
  return std::nullopt;
}

class ArchiveReader {
 public:
  ArchiveReader(const ReadPiece& read, int path_depth, const DbtLimits& limits)
      : input_{read, limits.max_compressed_bytes},
        limits_(limits),
        path_depth_(path_depth),
        out_(limits.max_kept_bytes) {}

  Result<std::vector<store::DbtDescription>> Run() {
    a_.reset(archive_read_new());
    if (!a_) return Error::Internal("libarchive: out of memory");
    archive_read_support_filter_gzip(a_.get());
    archive_read_support_format_tar(a_.get());
    if (archive_read_open(a_.get(), &input_, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
      return ArchiveError("the artifacts are not a .tar.gz archive");
    }
    bool first = true;
    bool seen[2] = {false, false};
    for (;;) {
      struct archive_entry* entry = nullptr;
      const int r = archive_read_next_header(a_.get(), &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        return ArchiveError(first ? "the artifacts are not a .tar.gz archive"
                                  : "the archive is truncated or corrupt");
      }
      if (first && archive_filter_code(a_.get(), 0) != ARCHIVE_FILTER_GZIP) {
        return Error::BadRequest(
            "the artifacts are not gzip-compressed: a .tar.gz of dbt's target/ folder is "
            "expected");
      }
      first = false;
      if (auto over = CheckExpanded(0)) return *over;
      auto name = CheckedName(entry);
      if (!name) return name.error();
      auto file = ArtifactOf(*name);
      if (file && archive_entry_filetype(entry) == AE_IFREG) {
        bool& was_seen = seen[*file == ArtifactFile::kManifest ? 0 : 1];
        if (was_seen) {
          return Error::BadRequest("the archive holds more than one " +
                                   std::string(FileName(*file)));
        }
        was_seen = true;
        JsonFileReader json(*file, path_depth_, out_);
        if (auto s = ReadData(&json); !s) return s.error();
      } else if (auto s = ReadData(nullptr); !s) {
        return s.error();
      }
    }
    if (first) {
      // No entry at all: libarchive reads an empty or all-zero stream as an empty archive.
      if (input_.error) return *input_.error;
      return Error::BadRequest("the artifacts archive is empty");
    }
    if (!seen[0]) {
      return Error::BadRequest("the archive has no manifest.json (at its root or under target/)");
    }
    return out_.Take();
  }

 private:
  // The entry's bytes, to `json` or discarded; every byte counts against the expanded limit.
  Status ReadData(JsonFileReader* json) {
    std::array<char, kBlockSize>& block = *block_;
    std::uint64_t entry_bytes = 0;
    for (;;) {
      const la_ssize_t n = archive_read_data(a_.get(), block.data(), block.size());
      if (n < 0) return ArchiveError("the archive is truncated or corrupt");
      if (n == 0) break;
      entry_bytes += static_cast<std::uint64_t>(n);
      if (auto over = CheckExpanded(entry_bytes)) return *over;
      if (json != nullptr) {
        if (auto s = json->Write(block.data(), static_cast<std::size_t>(n), true); !s) return s;
      }
    }
    data_bytes_ += entry_bytes;
    if (json != nullptr) return json->Write(nullptr, 0, false);
    return OkStatus();
  }

  // Past the expanded limit: what the gzip stream has produced (headers and data), or the data
  // bytes libarchive handed out, whichever is larger.
  std::optional<Error> CheckExpanded(std::uint64_t current_entry_bytes) {
    const la_int64_t produced = archive_filter_bytes(a_.get(), 0);
    const std::uint64_t expanded = std::max<std::uint64_t>(
        produced < 0 ? 0 : static_cast<std::uint64_t>(produced), data_bytes_ + current_entry_bytes);
    if (expanded <= limits_.max_expanded_bytes) return std::nullopt;
    return Error::BadRequest("the archive expands to more than " + Mib(limits_.max_expanded_bytes));
  }

  Error ArchiveError(std::string_view what) {
    if (input_.error) return *input_.error;
    const char* detail = archive_error_string(a_.get());
    std::string message(what);
    if (detail != nullptr && *detail != '\0') message += std::string(": ") + detail;
    return Error::BadRequest(std::move(message));
  }

  ArchiveInput input_;
  DbtLimits limits_;
  int path_depth_;
  Collector out_;
  std::unique_ptr<struct archive, ArchiveFree> a_;
  std::unique_ptr<std::array<char, kBlockSize>> block_ =
      std::make_unique<std::array<char, kBlockSize>>();
  std::uint64_t data_bytes_ = 0;
};

}  // namespace

Result<std::vector<store::DbtDescription>> ReadDbtArtifacts(const ReadPiece& read, int path_depth,
                                                            const DbtLimits& limits) {
  return ArchiveReader(read, path_depth, limits).Run();
}

}  // namespace connreg::catalog
