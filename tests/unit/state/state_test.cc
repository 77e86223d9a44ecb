// StateStore on real RocksDB in a temporary directory, and the write-behind
// cache over it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "boxwatch/v1/state.pb.h"
#include "state/state_store.h"
#include "state/write_behind_cache.h"

extern char** environ;

namespace boxwatch::state {
namespace {

using Writes = std::vector<PartitionStore::Write>;

testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << s.ToString();
}
template <typename T>
testing::AssertionResult IsOk(const Result<T>& r) {
  return IsOk(r.status());
}

// The error code, or nullopt for success.
std::optional<Errc> CodeOf(const Status& s) {
  return s.ok() ? std::nullopt : std::optional<Errc>(s.code());
}
template <typename T>
std::optional<Errc> CodeOf(const Result<T>& r) {
  return CodeOf(r.status());
}

// A directory under /tmp made with mkdtemp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/boxwatch_state_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<StateStore> MustOpen(StoreOptions options) {
  auto r = StateStore::Open(options);
  if (!r.ok()) {
    ADD_FAILURE() << "open " << options.path << ": " << r.status().ToString();
    return nullptr;
  }
  return std::move(r).value();
}

PartitionStore* MustPartition(StateStore& store, int32_t partition) {
  auto r = store.Partition(partition);
  if (!r.ok()) {
    ADD_FAILURE() << "partition " << partition << ": " << r.status().ToString();
    return nullptr;
  }
  return *r;
}

std::optional<std::string> MustGet(const PartitionStore& p, std::string_view key) {
  auto r = p.Get(key);
  if (!r.ok()) {
    ADD_FAILURE() << "get " << key << ": " << r.status().ToString();
    return std::nullopt;
  }
  return *r;
}

std::map<std::string, std::string> Contents(const PartitionStore& p) {
  std::map<std::string, std::string> out;
  Status s = p.ForEach([&](std::string_view k, std::string_view v) {
    out.emplace(k, v);
    return true;
  });
  EXPECT_TRUE(IsOk(s));
  return out;
}

// ------------------------------------------------------------- StateStore

TEST(StateStore, CommitThenReopenReadsBackValuesCheckpointAndMeta) {
  TempDir dir;
  {
    auto store = MustOpen({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    PartitionStore* p = MustPartition(*store, 0);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(IsOk(p->Commit({{"CSQU3054383", "state-a"}, {"MSKU9070323", "state-b"}}, 42,
                               "meta-1")));
    EXPECT_EQ(p->ChangelogCheckpoint(), 42);
    EXPECT_EQ(p->TaskMeta(), "meta-1");
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(MustGet(*p, "CSQU3054383"), "state-a");
  EXPECT_EQ(MustGet(*p, "MSKU9070323"), "state-b");
  EXPECT_EQ(MustGet(*p, "TGHU4765314"), std::nullopt);
  EXPECT_EQ(p->ChangelogCheckpoint(), 42);
  EXPECT_EQ(p->TaskMeta(), "meta-1");
}

// Gathered commits (StoreOptions::commit_overlay_bytes) read as written
// through: the latest value per key, deletes, the last checkpoint and
// metadata, in Get, GetMany and ForEach; and a clean close keeps them.
TEST(StateStore, GatheredCommitsReadAsWrittenAndSurviveACleanClose) {
  TempDir dir;
  {
    auto store = MustOpen({.path = dir.path(), .commit_overlay_bytes = 1 << 20, .commit_overlay_commits = 1000});
    ASSERT_NE(store, nullptr);
    PartitionStore* p = MustPartition(*store, 0);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(IsOk(p->Commit({{"CSQU3054383", "a1"}, {"MSKU9070323", "b1"}, {"TGHU4765314", "c1"}}, 10, "m1")));
    ASSERT_TRUE(IsOk(store->Flush()));  // c1 and the others reach RocksDB
    ASSERT_TRUE(IsOk(p->Commit({{"CSQU3054383", "a2"}, {"TGHU4765314", std::nullopt}}, 11, "m2")));
    ASSERT_TRUE(IsOk(p->Commit({{"CSQU3054383", "a3"}, {"APLU1234560", "d1"}}, 12, "m3")));
    EXPECT_EQ(MustGet(*p, "CSQU3054383"), "a3");
    EXPECT_EQ(MustGet(*p, "MSKU9070323"), "b1");
    EXPECT_EQ(MustGet(*p, "TGHU4765314"), std::nullopt) << "deleted while gathered, over a stored value";
    EXPECT_EQ(MustGet(*p, "APLU1234560"), "d1");
    EXPECT_EQ(p->ChangelogCheckpoint(), 12);
    EXPECT_EQ(p->TaskMeta(), "m3");
    auto many = p->GetMany(std::vector<std::string>{"TGHU4765314", "CSQU3054383", "MSKU9070323"});
    ASSERT_TRUE(IsOk(many));
    EXPECT_EQ(*many, (std::vector<std::optional<std::string>>{std::nullopt, "a3", "b1"}));
    std::vector<std::string> seen;
    ASSERT_TRUE(IsOk(p->ForEach([&](std::string_view k, std::string_view v) {
      seen.push_back(std::string(k) + "=" + std::string(v));
      return true;
    })));
    EXPECT_EQ(seen, (std::vector<std::string>{"APLU1234560=d1", "CSQU3054383=a3", "MSKU9070323=b1"}));
    ASSERT_TRUE(IsOk(p->Commit({{"MSKU9070323", "b2"}}, 13, "m4")));  // gathered at close
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(MustGet(*p, "CSQU3054383"), "a3");
  EXPECT_EQ(MustGet(*p, "MSKU9070323"), "b2");
  EXPECT_EQ(MustGet(*p, "TGHU4765314"), std::nullopt);
  EXPECT_EQ(MustGet(*p, "APLU1234560"), "d1");
  EXPECT_EQ(p->ChangelogCheckpoint(), 13);
  EXPECT_EQ(p->TaskMeta(), "m4");
}

// A commit that fills the overlay hands its write to the store's flusher
// thread and returns: while commits go on gathering beside that write (two
// partitions, every second commit filling, and now and then one that alone
// fills it and is written through), each read answers the latest value
// committed, deletes included, and a clean close keeps the last of
// everything. Run under the sanitizers' builds, this is also where a race
// between the flusher, the commits and the reads would show.
TEST(StateStore, OverlayWrittenInTheBackgroundReadsAsWrittenThroughoutAndSurvivesACleanClose) {
  TempDir dir;
  constexpr int kKeys = 300, kCommits = 400;
  std::map<std::string, std::optional<std::string>> latest[2];
  auto key = [](int k) { return "KEY" + std::to_string(1000 + k); };
  {
    auto store = MustOpen({.path = dir.path(), .commit_overlay_bytes = 64 << 10, .commit_overlay_commits = 2});
    ASSERT_NE(store, nullptr);
    PartitionStore* parts[2] = {MustPartition(*store, 0), MustPartition(*store, 1)};
    ASSERT_NE(parts[0], nullptr);
    ASSERT_NE(parts[1], nullptr);
    uint64_t x = 20261206;
    auto next = [&] { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, x >> 33; };
    for (int c = 0; c < kCommits; ++c) {
      for (int p = 0; p < 2; ++p) {
        // Every 25th commit alone fills the overlay: written through, after
        // what is gathered (and the flusher's write under way).
        const bool big = c % 25 == 24;
        Writes writes;
        for (int i = 0; i < (big ? 400 : 40); ++i) {
          const std::string k = key(static_cast<int>(next() % kKeys));
          std::optional<std::string> v;
          if (next() % 8 != 0) {
            v = "c" + std::to_string(c) + "p" + std::to_string(p) + std::string(big ? 250 : next() % 200, 'x');
          }
          writes.push_back({k, v});
          latest[p][k] = v;
        }
        ASSERT_TRUE(IsOk(parts[p]->Commit(writes, c + 1, "m" + std::to_string(c))));
        for (int i = 0; i < 10; ++i) {
          const std::string k = key(static_cast<int>(next() % kKeys));
          auto it = latest[p].find(k);
          ASSERT_EQ(MustGet(*parts[p], k), it == latest[p].end() ? std::nullopt : it->second)
              << "partition " << p << " key " << k << " after commit " << c;
        }
        ASSERT_EQ(parts[p]->ChangelogCheckpoint(), c + 1);
      }
    }
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  for (int p = 0; p < 2; ++p) {
    PartitionStore* part = MustPartition(*store, p);
    ASSERT_NE(part, nullptr);
    EXPECT_EQ(part->ChangelogCheckpoint(), kCommits);
    EXPECT_EQ(part->TaskMeta(), "m" + std::to_string(kCommits - 1));
    for (const auto& [k, v] : latest[p]) EXPECT_EQ(MustGet(*part, k), v) << "partition " << p << " key " << k;
  }
}

// The nice value of this process's threads named `name` (-100: none).
int NiceOfThreadsNamed(const std::string& name, int* count) {
  int nice = -100;
  *count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string n;
    std::getline(comm, n);
    if (n != name) continue;
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the name in parentheses: state is field 3, nice field 19.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {
      if (i == 19) nice = std::stoi(field);
    }
    ++*count;
  }
  return nice;
}

// StoreOptions::low_priority_compactions: the thread that runs compactions
// has nice 19 (the process's: no other test here asks for it). Nine flushed memtables make RocksDB compact (the
// L0 trigger is 8), which starts that thread.
TEST(StateStore, CompactionsRunAtTheLowestCpuPriority) {
  TempDir dir;
  auto store = MustOpen({.path = dir.path(), .commit_overlay_bytes = 0, .low_priority_compactions = true});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(IsOk(p->Commit({{"KEY" + std::to_string(i), std::string(1000, 'x')}}, i + 1, "m")));
    ASSERT_TRUE(IsOk(store->Flush()));
  }
  int threads = 0, nice = -100;
  // The compaction is scheduled in the background, and a thread that
  // existed before lowers itself when it takes its next job: up to 2 s.
  for (int tries = 0; tries < 200 && (threads == 0 || nice != 19); ++tries) {
    nice = NiceOfThreadsNamed("rocksdb:low", &threads);
    if (threads == 0 || nice != 19) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(threads, 0) << "no compaction thread (rocksdb:low) started after 9 flushed memtables";
  EXPECT_EQ(nice, 19) << "compactions run at nice " << nice;
}

TEST(StateStore, NewPartitionHasNoCheckpointAndNoMeta) {
  TempDir dir;
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 5);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->PartitionId(), 5);
  EXPECT_EQ(p->ChangelogCheckpoint(), -1);
  EXPECT_EQ(p->TaskMeta(), "");
  EXPECT_TRUE(Contents(*p).empty());
  EXPECT_EQ(p->ApproximateKeys(), 0u);
}

TEST(StateStore, OpenCreatesMissingParentDirectories) {
  TempDir dir;
  const std::string nested = dir.path() + "/a/b/state";
  auto store = MustOpen({.path = nested});
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::is_directory(nested));
}

TEST(StateStore, DeletesRemoveKeysAndSurviveReopen) {
  TempDir dir;
  {
    auto store = MustOpen({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    PartitionStore* p = MustPartition(*store, 0);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(IsOk(p->Commit({{"a", "1"}, {"b", "2"}, {"c", "3"}}, 3, "")));
    ASSERT_TRUE(IsOk(p->Commit({{"b", std::nullopt}, {"never-stored", std::nullopt}}, 5, "")));
    EXPECT_EQ(MustGet(*p, "b"), std::nullopt);
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(Contents(*p), (std::map<std::string, std::string>{{"a", "1"}, {"c", "3"}}));
  EXPECT_EQ(p->ChangelogCheckpoint(), 5);
}

TEST(StateStore, GetManyAnswersEachKeyAsGetDoesInTheOrderAsked) {
  TempDir dir;
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(IsOk(p->Commit({{"w#10", "ten"}, {"w#9", "nine"}, {"w#8", "eight"}}, 1, "")));
  // Some in the memtable, some in a table file after a reopen would do the
  // same; here: not in key order ("10" sorts before "9"), one missing.
  const std::vector<std::string> keys = {"w#8", "w#9", "w#10", "w#11"};
  auto many = p->GetMany(keys);
  ASSERT_TRUE(many.ok()) << many.error().message;
  ASSERT_EQ(many->size(), 4u);
  EXPECT_EQ((*many)[0], std::optional<std::string>("eight"));
  EXPECT_EQ((*many)[1], std::optional<std::string>("nine"));
  EXPECT_EQ((*many)[2], std::optional<std::string>("ten"));
  EXPECT_EQ((*many)[3], std::nullopt);
  const std::vector<std::string> reserved = {"w#8", std::string("\0x", 2)};
  EXPECT_FALSE(p->GetMany(reserved).ok()) << "a reserved key is refused as Get refuses it";
}

TEST(StateStore, LaterWriteToTheSameKeyInOneBatchWins) {
  TempDir dir;
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(IsOk(p->Commit({{"k", "1"}, {"k", std::nullopt}, {"k", "3"}, {"j", "x"},
                              {"j", std::nullopt}},
                             1, "")));
  EXPECT_EQ(MustGet(*p, "k"), "3");
  EXPECT_EQ(MustGet(*p, "j"), std::nullopt);
}

// Views of `writes` whose bytes live in `bytes` (a deque: they stay put).
std::vector<PartitionStore::WriteView> ViewsOf(const Writes& writes, std::deque<std::string>* bytes) {
  std::vector<PartitionStore::WriteView> views;
  for (const auto& w : writes) {
    const std::string_view key = bytes->emplace_back(w.key);
    std::optional<std::string_view> value;
    if (w.value) value = std::string_view(bytes->emplace_back(*w.value));
    views.push_back({key, value});
  }
  return views;
}

TEST(StateStore, LastWritePerKeyInKeyOrderStoresWhatTheWritesInOrderStore) {
  // A restore commits each batch of changelog records sorted and reduced to
  // the last write per key; the store must end as with the records in order.
  TempDir dir;
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* in_order = MustPartition(*store, 0);
  PartitionStore* reduced = MustPartition(*store, 1);
  ASSERT_NE(in_order, nullptr);
  ASSERT_NE(reduced, nullptr);
  std::mt19937 rng(7);
  std::deque<std::string> bytes;  // what the views point at, kept alive
  for (int batch = 0; batch < 20; ++batch) {
    Writes writes;
    for (int i = 0; i < 500; ++i) {
      std::string key = "c" + std::to_string(rng() % 300);  // many keys written several times a batch
      if (rng() % 4 == 0) {
        writes.push_back({key, std::nullopt});
      } else {
        writes.push_back({key, "v" + std::to_string(batch) + "." + std::to_string(i)});
      }
    }
    std::vector<PartitionStore::WriteView> views = ViewsOf(writes, &bytes);
    KeepLastWritePerKey(&views);
    ASSERT_LE(views.size(), 300u);
    for (size_t i = 1; i < views.size(); ++i) ASSERT_LT(views[i - 1].key, views[i].key);
    ASSERT_TRUE(IsOk(in_order->Commit(writes, batch + 1, "")));
    ASSERT_TRUE(IsOk(reduced->CommitViews(views, batch + 1, "")));
    ASSERT_EQ(Contents(*in_order), Contents(*reduced)) << "after batch " << batch;
  }
  EXPECT_FALSE(Contents(*reduced).empty());
}

TEST(StateStore, LastOfEachKeyInOrderAgreesWithAStableSortOfTheWholeKeys) {
  // The order compares 16-byte prefixes as integers: keys shorter, longer
  // and exactly that long, sharing prefixes, with zero and 0xff bytes, must
  // come out as a bytewise comparison of the whole keys orders them, with
  // the last of equal keys kept.
  std::mt19937 rng(11);
  const std::string alphabet{'\0', '\x01', 'A', '\xff', '#'};
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> owned;
    const std::string stem = round % 2 ? std::string(16, 'C') : "ABCU123456";  // shared prefixes
    for (int i = 0; i < 300; ++i) {
      std::string k = rng() % 3 ? stem.substr(0, rng() % (stem.size() + 1)) : "";
      for (int n = static_cast<int>(rng() % 8); n > 0; --n) k.push_back(alphabet[rng() % alphabet.size()]);
      owned.push_back(k);
    }
    std::vector<std::string_view> keys(owned.begin(), owned.end());
    std::vector<uint32_t> expected(keys.size());
    for (uint32_t i = 0; i < expected.size(); ++i) expected[i] = i;
    std::stable_sort(expected.begin(), expected.end(), [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
    std::vector<uint32_t> last;
    for (size_t i = 0; i < expected.size(); ++i) {
      if (i + 1 < expected.size() && keys[expected[i + 1]] == keys[expected[i]]) continue;
      last.push_back(expected[i]);
    }
    ASSERT_EQ(LastOfEachKeyInOrder(keys), last) << "round " << round;
  }
}

TEST(StateStore, BulkCommitStoresWhatTheWritesInOrderStoreAndSurvivesReopen) {
  // A restore's long runs go in as table files: the store must end as with
  // the records committed in order, tombstones included, across runs that
  // overwrite each other's keys.
  TempDir dir;
  std::map<std::string, std::string> expected;
  std::deque<std::string> bytes;  // what the views point at, kept alive
  {
    auto store = MustOpen({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    PartitionStore* in_order = MustPartition(*store, 0);
    PartitionStore* bulk = MustPartition(*store, 1);
    ASSERT_NE(in_order, nullptr);
    ASSERT_NE(bulk, nullptr);
    std::mt19937 rng(11);
    for (int run = 0; run < 4; ++run) {
      Writes writes;
      for (int i = 0; i < 30000; ++i) {
        std::string key = "c" + std::to_string(rng() % 20000);
        if (run > 0 && rng() % 5 == 0) {
          writes.push_back({key, std::nullopt});
        } else {
          writes.push_back({key, "v" + std::to_string(run) + "." + std::to_string(i)});
        }
      }
      std::vector<PartitionStore::WriteView> views = ViewsOf(writes, &bytes);
      KeepLastWritePerKey(&views);
      ASSERT_GT(views.size(), 4096u) << "the run must be long enough to go through a table file";
      ASSERT_TRUE(IsOk(in_order->Commit(writes, run + 1, "m" + std::to_string(run))));
      ASSERT_TRUE(IsOk(bulk->BulkCommit(views, run + 1, "m" + std::to_string(run))));
      ASSERT_EQ(Contents(*in_order), Contents(*bulk)) << "after run " << run;
      EXPECT_EQ(bulk->ChangelogCheckpoint(), run + 1);
      EXPECT_EQ(bulk->TaskMeta(), "m" + std::to_string(run));
    }
    expected = Contents(*in_order);
    // A run out of key order is refused, and leaves the store as it was.
    std::vector<std::string> keys;
    for (int i = 0; i < 5000; ++i) keys.push_back("z" + std::to_string(100000 - i));  // descending
    std::vector<PartitionStore::WriteView> unsorted;
    for (const auto& k : keys) unsorted.push_back({k, "x"});
    EXPECT_FALSE(IsOk(bulk->BulkCommit(unsorted, 99, "bad")));
    EXPECT_EQ(Contents(*bulk), expected);
    EXPECT_EQ(bulk->ChangelogCheckpoint(), 4);
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().rfind("restore-", 0), std::string::npos)
        << "a table file of a bulk commit was left behind: " << entry.path();
  }
  // One cut short by a crash is removed when the store opens.
  { std::ofstream(dir.path() + "/restore-p1-77.sst") << "partial"; }
  auto store = MustOpen({.path = dir.path()});
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/restore-p1-77.sst"));
  ASSERT_NE(store, nullptr);
  PartitionStore* bulk = MustPartition(*store, 1);
  ASSERT_NE(bulk, nullptr);
  EXPECT_EQ(Contents(*bulk), expected);
  EXPECT_EQ(bulk->ChangelogCheckpoint(), 4);
  EXPECT_FALSE(expected.empty());
}

TEST(StateStore, PartitionsAreIndependentAndSurviveReopen) {
  TempDir dir;
  {
    auto store = MustOpen({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    PartitionStore* p0 = MustPartition(*store, 0);
    PartitionStore* p3 = MustPartition(*store, 3);
    ASSERT_NE(p0, nullptr);
    ASSERT_NE(p3, nullptr);
    EXPECT_NE(p0, p3);
    EXPECT_EQ(MustPartition(*store, 3), p3) << "Partition() returns the same store each time";
    ASSERT_TRUE(IsOk(p0->Commit({{"same-key", "in-p0"}, {"only-p0", "x"}}, 10, "meta-p0")));
    ASSERT_TRUE(IsOk(p3->Commit({{"same-key", "in-p3"}}, 700, "meta-p3")));
    EXPECT_EQ(store->Partitions(), (std::vector<int32_t>{0, 3}));
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Partitions(), (std::vector<int32_t>{0, 3}));
  PartitionStore* p0 = MustPartition(*store, 0);
  PartitionStore* p3 = MustPartition(*store, 3);
  ASSERT_NE(p0, nullptr);
  ASSERT_NE(p3, nullptr);
  EXPECT_EQ(Contents(*p0),
            (std::map<std::string, std::string>{{"only-p0", "x"}, {"same-key", "in-p0"}}));
  EXPECT_EQ(Contents(*p3), (std::map<std::string, std::string>{{"same-key", "in-p3"}}));
  EXPECT_EQ(p0->ChangelogCheckpoint(), 10);
  EXPECT_EQ(p3->ChangelogCheckpoint(), 700);
  EXPECT_EQ(p0->TaskMeta(), "meta-p0");
  EXPECT_EQ(p3->TaskMeta(), "meta-p3");
}

TEST(StateStore, DropPartitionRemovesItsDataAndCheckpointOnly) {
  TempDir dir;
  {
    auto store = MustOpen({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    PartitionStore* p1 = MustPartition(*store, 1);
    PartitionStore* p2 = MustPartition(*store, 2);
    ASSERT_NE(p1, nullptr);
    ASSERT_NE(p2, nullptr);
    ASSERT_TRUE(IsOk(p1->Commit({{"k", "v1"}}, 9, "m1")));
    ASSERT_TRUE(IsOk(p2->Commit({{"k", "v2"}}, 4, "m2")));

    ASSERT_TRUE(IsOk(store->DropPartition(1)));
    EXPECT_EQ(store->Partitions(), (std::vector<int32_t>{2}));
    EXPECT_TRUE(IsOk(store->DropPartition(1))) << "dropping a missing partition is not an error";

    PartitionStore* again = MustPartition(*store, 1);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->ChangelogCheckpoint(), -1);
    EXPECT_EQ(again->TaskMeta(), "");
    EXPECT_EQ(MustGet(*again, "k"), std::nullopt);
    ASSERT_TRUE(IsOk(store->DropPartition(1)));
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Partitions(), (std::vector<int32_t>{2}));
  PartitionStore* p2 = MustPartition(*store, 2);
  ASSERT_NE(p2, nullptr);
  EXPECT_EQ(MustGet(*p2, "k"), "v2");
  EXPECT_EQ(p2->ChangelogCheckpoint(), 4);
}

TEST(StateStore, ForEachVisitsUserKeysInOrderSkippingReservedKeysAndStopsOnFalse) {
  TempDir dir;
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(IsOk(p->Commit({{"c", "3"}, {"a", "1"}, {"\x01low", "0"}, {"b", "2"}}, 7, "meta")));

  std::vector<std::string> keys;
  ASSERT_TRUE(IsOk(p->ForEach([&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  })));
  EXPECT_EQ(keys, (std::vector<std::string>{"\x01low", "a", "b", "c"}));

  keys.clear();
  ASSERT_TRUE(IsOk(p->ForEach([&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return keys.size() < 2;
  })));
  EXPECT_EQ(keys, (std::vector<std::string>{"\x01low", "a"}));
}

TEST(StateStore, RejectsReservedEmptyKeysAndNegativeOffsetsWritingNothing) {
  TempDir dir;
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(IsOk(p->Commit({{"a", "before"}}, 1, "m")));

  const std::string reserved("\0boxwatch.changelog_next_offset", 31);
  Status s = p->Commit({{"a", "after"}, {reserved, "x"}}, 2, "m2");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("partition 0"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("reserved"), std::string::npos) << s.message();

  EXPECT_EQ(CodeOf(p->Commit({{"a", "after"}, {"", "x"}}, 2, "m2")), Errc::kInvalidArgument);
  EXPECT_EQ(CodeOf(p->Commit({{"a", "after"}}, -5, "m2")), Errc::kInvalidArgument);

  // Nothing of the rejected batches was written.
  EXPECT_EQ(MustGet(*p, "a"), "before");
  EXPECT_EQ(p->ChangelogCheckpoint(), 1);
  EXPECT_EQ(p->TaskMeta(), "m");

  EXPECT_EQ(CodeOf(p->Get(reserved)), Errc::kInvalidArgument);
  EXPECT_EQ(CodeOf(store->Partition(-1)), Errc::kInvalidArgument);
}

TEST(StateStore, OpenReportsEveryInvalidOptionAtOnce) {
  auto r = StateStore::Open({.path = "", .block_cache_bytes = 0, .max_write_buffers = 0});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  for (const char* part : {"path is empty", "block_cache_bytes is 0", "max_write_buffers is 0"}) {
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  }
}

TEST(StateStore, SecondOpenOfALockedDirectoryIsAnIoErrorNamingThePath) {
  TempDir dir;
  auto first = MustOpen({.path = dir.path()});
  ASSERT_NE(first, nullptr);
  auto second = StateStore::Open({.path = dir.path()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::kIo);
  EXPECT_NE(second.error().message.find(dir.path()), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find("another worker process"), std::string::npos)
      << second.error().message;
}

TEST(StateStore, DirectoryThatCannotBeCreatedIsAnIoErrorNamingThePath) {
  TempDir dir;
  const std::string file = dir.path() + "/a-file";
  std::FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto r = StateStore::Open({.path = file + "/state"});  // a path through a regular file
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kIo);
  EXPECT_NE(r.error().message.find(file + "/state"), std::string::npos) << r.error().message;
}

// The worker's commit protocol with a vector standing in for the changelog
// topic: a crash between the transaction commit and the store Commit loses
// the store batch, and restore replays exactly the changelog tail from
// ChangelogCheckpoint().
TEST(StateStore, RestoreReplaysTheChangelogTailBeyondTheCheckpoint) {
  TempDir dir;
  Writes changelog;  // offset = index
  {
    auto store = MustOpen({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    PartitionStore* p = MustPartition(*store, 0);
    ASSERT_NE(p, nullptr);
    // Interval 1: both the changelog and the store get it.
    Writes batch1 = {{"a", "1"}, {"b", "1"}};
    changelog.insert(changelog.end(), batch1.begin(), batch1.end());
    ASSERT_TRUE(IsOk(p->Commit(batch1, static_cast<int64_t>(changelog.size()), "")));
    // Interval 2: the transaction commits, then the process dies before the
    // store Commit.
    Writes batch2 = {{"a", "2"}, {"b", std::nullopt}, {"c", "2"}};
    changelog.insert(changelog.end(), batch2.begin(), batch2.end());
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  const int64_t from = p->ChangelogCheckpoint();
  ASSERT_EQ(from, 2);
  Writes tail(changelog.begin() + from, changelog.end());
  ASSERT_TRUE(IsOk(p->Commit(tail, static_cast<int64_t>(changelog.size()), "")));
  EXPECT_EQ(Contents(*p), (std::map<std::string, std::string>{{"a", "2"}, {"c", "2"}}));
  EXPECT_EQ(p->ChangelogCheckpoint(), 5);
}

// Crash atomicity: a child process commits batches in a loop (batch n sets
// every key to n, the checkpoint to n + 1 and the metadata to "meta n") and is
// killed with SIGKILL at a random moment, several times over the same
// directory. After each kill, every key must hold checkpoint - 1, and no
// commit the child saw succeed may be lost.
constexpr const char* kCrashChildDirEnv = "BOXWATCH_STATE_TEST_CRASH_DIR";
constexpr const char* kCrashChildFdEnv = "BOXWATCH_STATE_TEST_CRASH_FD";  // progress pipe
constexpr const char* kCrashChildWalEnv = "BOXWATCH_STATE_TEST_CRASH_WAL";  // "1": keep the write-ahead log
constexpr int kCrashKeys = 100;

std::string CrashKey(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "key%03d", i);
  return buf;
}

TEST(StateStoreCrashHelper, CommitsUntilKilled) {
  const char* dir = std::getenv(kCrashChildDirEnv);
  const char* fd_text = std::getenv(kCrashChildFdEnv);
  if (dir == nullptr || fd_text == nullptr) {
    GTEST_SKIP() << "helper process of StateStore.CommitBatchIsAtomicAcrossProcessKills; "
                    "runs only when that test spawns it";
  }
  const int progress_fd = std::atoi(fd_text);
  // Small memtables and a small overlay of gathered commits, so that both
  // reach RocksDB and disk while the child is being killed.
  const char* wal = std::getenv(kCrashChildWalEnv);
  auto store = MustOpen({.path = dir, .write_buffer_bytes = 1 << 20, .commit_overlay_bytes = 400 << 10,
                         .commit_overlay_commits = 2,
                         .write_ahead_log = wal != nullptr && std::string(wal) == "1"});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);
  const std::string padding(1000, 'x');
  const int64_t first = std::max<int64_t>(p->ChangelogCheckpoint(), 0);
  for (int64_t n = first; n < first + 1'000'000; ++n) {  // bounded if never killed
    Writes writes;
    for (int i = 0; i < kCrashKeys; ++i) {
      writes.push_back({CrashKey(i), std::to_string(n) + padding});
    }
    ASSERT_TRUE(IsOk(p->Commit(writes, n + 1, "meta " + std::to_string(n))));
    const std::string line = std::to_string(n + 1) + "\n";
    if (::write(progress_fd, line.data(), line.size()) < 0) return;  // the parent is gone
  }
}

// Starts the helper on `dir`, waits (on its progress pipe, no sleeping) until
// it has committed up to at least `kill_at`, spins `delay` so the kill lands
// anywhere in a commit, kills it, and returns the last checkpoint it reported
// (read to the pipe's end after the kill).
void RunChildAndKill(const std::string& dir, bool wal, int64_t kill_at, std::chrono::microseconds delay,
                     int64_t* last_reported) {
  // Both ends close on exec except the write end, which the child inherits
  // under its own number (no dup2 that could land on a descriptor in use).
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_EQ(::fcntl(pipe_fds[1], F_SETFD, 0), 0);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  env_storage.push_back(std::string(kCrashChildDirEnv) + "=" + dir);
  env_storage.push_back(std::string(kCrashChildFdEnv) + "=" + std::to_string(pipe_fds[1]));
  env_storage.push_back(std::string(kCrashChildWalEnv) + "=" + (wal ? "1" : "0"));
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = "state_test";
  std::string arg1 = "--gtest_filter=StateStoreCrashHelper.CommitsUntilKilled";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t child = 0;
  const int spawned =
      ::posix_spawn(&child, "/proc/self/exe", &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) ::close(pipe_fds[0]);
  ASSERT_EQ(spawned, 0) << std::strerror(spawned);

  FILE* progress = ::fdopen(pipe_fds[0], "r");
  long long n = 0;
  *last_reported = -1;
  while (progress != nullptr && *last_reported < kill_at &&
         std::fscanf(progress, "%lld", &n) == 1) {
    *last_reported = n;
  }
  const auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until) {
  }
  ::kill(child, SIGKILL);
  int wstatus = 0;
  const pid_t waited = ::waitpid(child, &wstatus, 0);
  // The child went on committing while this spun: what it reported before
  // the kill is still in the pipe, and a commit it made is one it reported
  // (or the one the kill interrupted).
  while (progress != nullptr && std::fscanf(progress, "%lld", &n) == 1) *last_reported = n;
  if (progress != nullptr) std::fclose(progress);
  ASSERT_EQ(waited, child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "the child ended by itself (status " << wstatus
                                    << ") after reporting checkpoint " << *last_reported;
  ASSERT_GE(*last_reported, kill_at);
}

// After each kill the partition holds exactly the batches up to its
// checkpoint: every key at checkpoint - 1 and the matching metadata. With the
// write-ahead log no acknowledged commit is lost; without it (the default)
// the unflushed tail is lost whole, which restoring the changelog from the
// checkpoint repairs.
void CrashRounds(bool wal) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (kill timing also depends on the scheduler)");
  std::mt19937 random(seed);
  TempDir dir;
  constexpr int kRounds = 10;
  constexpr int64_t kCommitsPerRound = 80;  // gathered 2 at a time: as many memtables as 40 written through
  int64_t checkpoint = 0;
  int64_t lost = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<>(0, 300)(random));
    int64_t last_reported = 0;
    ASSERT_NO_FATAL_FAILURE(
        RunChildAndKill(dir.path(), wal, std::max<int64_t>(checkpoint, 0) + kCommitsPerRound, delay, &last_reported));

    auto store = MustOpen({.path = dir.path(), .write_ahead_log = wal});
    ASSERT_NE(store, nullptr);
    PartitionStore* p = MustPartition(*store, 0);
    ASSERT_NE(p, nullptr);
    checkpoint = p->ChangelogCheckpoint();
    if (wal) {
      ASSERT_GE(checkpoint, last_reported) << "a process crash lost an acknowledged commit";
    } else {
      ASSERT_LE(checkpoint, last_reported + 1) << "the store holds a commit never made";
      lost += last_reported - std::max<int64_t>(checkpoint, 0);
    }
    int keys = 0;
    const std::string expected = std::to_string(checkpoint - 1);
    ASSERT_TRUE(IsOk(p->ForEach([&](std::string_view key, std::string_view value) {
      ++keys;
      EXPECT_EQ(value.substr(0, value.find('x')), expected) << "key " << key;
      return true;
    })));
    if (checkpoint > 0) {
      EXPECT_EQ(p->TaskMeta(), "meta " + expected);
      EXPECT_EQ(keys, kCrashKeys);
    } else {
      EXPECT_EQ(keys, 0) << "values without a checkpoint";
    }
    if (::testing::Test::HasFailure()) break;
  }
  std::printf("%s: %lld acknowledged commits lost to kills over %d rounds, last checkpoint %lld\n",
              wal ? "with WAL" : "without WAL", static_cast<long long>(lost), kRounds,
              static_cast<long long>(checkpoint));
  if (!wal) {
    EXPECT_GT(checkpoint, 0) << "memtables never reached disk: the kills tested nothing";
  }
}

TEST(StateStore, CommitBatchIsAtomicAcrossProcessKillsWithoutAWriteAheadLog) { CrashRounds(false); }

TEST(StateStore, WithAWriteAheadLogAProcessKillLosesNoAcknowledgedCommit) { CrashRounds(true); }

TEST(StateStore, CleanCloseWithoutAWriteAheadLogKeepsEveryCommit) {
  TempDir dir;
  {
    auto store = MustOpen({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    PartitionStore* p = MustPartition(*store, 3);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(IsOk(p->Commit({{"CSQU3054383", "v"}}, 7, "meta")));
  }
  auto store = MustOpen({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 3);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->ChangelogCheckpoint(), 7);
  EXPECT_EQ(p->TaskMeta(), "meta");
  // RocksDB still opens log files, but nothing is written to them.
  uintmax_t log_bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".log") log_bytes += entry.file_size();
  }
  EXPECT_EQ(log_bytes, 0u);
}

// The memory bound: the shared block cache holds data, index and filter
// blocks, and stays within its budget while the working set is far larger.
TEST(StateStore, BlockCacheUsageStaysWithinItsBudgetAfterWritingAndReading50kKeys) {
  TempDir dir;
  constexpr size_t kBudget = 1 << 20;  // 1 MiB
  auto store = MustOpen(
      {.path = dir.path(), .block_cache_bytes = kBudget, .write_buffer_bytes = 512 << 10});
  ASSERT_NE(store, nullptr);
  PartitionStore* p = MustPartition(*store, 0);
  ASSERT_NE(p, nullptr);

  constexpr int kKeys = 50'000;
  auto key = [](int i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "CSQU%07d", i);
    return std::string(buf);
  };
  // Incompressible values (splitmix64 of the index), so the data on disk is
  // really about 7 MB.
  auto value = [](int i) {
    std::string out = std::to_string(i) + ":";
    uint64_t x = static_cast<uint64_t>(i) + 1;
    while (out.size() < 130) {
      x += 0x9e3779b97f4a7c15;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
      z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
      z ^= z >> 31;
      for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>('!' + (z >> (8 * b)) % 94));
    }
    return out;
  };
  for (int start = 0; start < kKeys; start += 1000) {
    Writes batch;
    for (int i = start; i < start + 1000; ++i) batch.push_back({key(i), value(i)});
    ASSERT_TRUE(IsOk(p->Commit(batch, start + 1000, "")));
  }
  ASSERT_TRUE(IsOk(store->Flush()));  // reads below go through SST files and the cache

  int mismatches = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (MustGet(*p, key(i)) != value(i)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);

  const uint64_t usage = store->BlockCacheUsageBytes();
  RecordProperty("block_cache_usage_bytes", std::to_string(usage));
  RecordProperty("approximate_size_bytes", std::to_string(store->ApproximateSizeBytes()));
  EXPECT_LE(usage, kBudget);
  // The data (about 7 MB) is far larger than the budget, so a working cache
  // is nearly full; this keeps the bound above from passing vacuously.
  EXPECT_GT(usage, kBudget / 2);
  EXPECT_GT(store->ApproximateSizeBytes(), uint64_t{kKeys} * 100);
  EXPECT_NEAR(static_cast<double>(p->ApproximateKeys()), kKeys, kKeys * 0.1);
}

struct ColumnFamilyNameCase {
  const char* name;
  const char* input;
  std::optional<int32_t> partition;
};

class PartitionColumnFamilyNames : public testing::TestWithParam<ColumnFamilyNameCase> {};

TEST_P(PartitionColumnFamilyNames, ParsesOnlyCanonicalPartitionNames) {
  const ColumnFamilyNameCase& c = GetParam();
  EXPECT_EQ(ParsePartitionColumnFamilyName(c.input), c.partition);
  if (c.partition) {
    EXPECT_EQ(PartitionColumnFamilyName(*c.partition), c.input);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Names, PartitionColumnFamilyNames,
    testing::Values(ColumnFamilyNameCase{"Zero", "p0", 0},
                    ColumnFamilyNameCase{"Twelve", "p12", 12},
                    ColumnFamilyNameCase{"Int32Max", "p2147483647", 2147483647},
                    ColumnFamilyNameCase{"Overflow", "p2147483648", std::nullopt},
                    ColumnFamilyNameCase{"LeadingZero", "p01", std::nullopt},
                    ColumnFamilyNameCase{"Negative", "p-1", std::nullopt},
                    ColumnFamilyNameCase{"NoDigits", "p", std::nullopt},
                    ColumnFamilyNameCase{"TrailingText", "p1x", std::nullopt},
                    ColumnFamilyNameCase{"Default", "default", std::nullopt}),
    [](const auto& info) { return info.param.name; });

// -------------------------------------------------------- WriteBehindCache

// A value type with the protobuf-like interface the cache needs. Its encoding
// has a "v:" prefix so that other bytes fail to decode.
struct TextValue {
  std::string text;
  bool fail_serialize = false;

  bool ParseFromString(const std::string& bytes) {
    if (bytes.rfind("v:", 0) != 0) return false;
    text = bytes.substr(2);
    return true;
  }
  bool SerializeToString(std::string* out) const {
    if (fail_serialize) return false;
    *out = "v:" + text;
    return true;
  }
};

using Cache = WriteBehindCache<TextValue>;

class WriteBehindCacheTest : public testing::Test {
 protected:
  void SetUp() override {
    store_ = MustOpen({.path = dir_.path()});
    ASSERT_NE(store_, nullptr);
    partition_ = MustPartition(*store_, 0);
    ASSERT_NE(partition_, nullptr);
  }

  // Stores key → "v:<text>" directly, as an earlier commit would have.
  void Seed(const std::map<std::string, std::string>& values) {
    Writes writes;
    for (const auto& [k, v] : values) writes.push_back({k, "v:" + v});
    ASSERT_TRUE(IsOk(partition_->Commit(writes, ++offset_, "")));
  }

  static std::string TextOf(Result<TextValue*> r) {
    if (!r.ok()) return "<error " + r.status().ToString() + ">";
    return *r == nullptr ? "<none>" : (*r)->text;
  }

  static std::vector<std::string> Keys(const Writes& writes) {
    std::vector<std::string> keys;
    for (const auto& w : writes) keys.push_back(w.key);
    return keys;
  }

  TempDir dir_;
  std::unique_ptr<StateStore> store_;
  PartitionStore* partition_ = nullptr;
  int64_t offset_ = 0;
};

TEST_F(WriteBehindCacheTest, GetMissLoadsFromTheStoreOnceAndCachesTheValueClean) {
  Seed({{"k", "stored"}});
  Cache cache(partition_);
  EXPECT_EQ(TextOf(cache.Get("k")), "stored");
  EXPECT_EQ(cache.GetStats().loads, 1u);
  EXPECT_TRUE(cache.Contains("k"));
  EXPECT_FALSE(cache.IsDirty("k"));

  EXPECT_EQ(TextOf(cache.Get("k")), "stored");
  EXPECT_EQ(cache.GetStats().loads, 1u) << "the second Get is a hit";
  EXPECT_EQ(cache.GetStats().hits, 1u);

  EXPECT_EQ(TextOf(cache.Get("absent")), "<none>");
  EXPECT_FALSE(cache.Contains("absent")) << "absence of a stored value is not cached";

  auto taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  EXPECT_TRUE(taken->empty()) << "loading does not make an entry dirty";
}

TEST_F(WriteBehindCacheTest, TakeDirtyReturnsChangedEntriesOnceInKeyOrderAndMarksThemClean) {
  Seed({{"c", "old"}, {"d", "untouched"}});
  Cache cache(partition_);
  cache.Put("b", TextValue{"new-b"});
  cache.Put("a", TextValue{"new-a"});
  auto c = cache.Get("c");
  ASSERT_TRUE(IsOk(c));
  (*c)->text = "changed-c";
  ASSERT_TRUE(IsOk(cache.MarkDirty("c")));
  ASSERT_EQ(TextOf(cache.Get("d")), "untouched");
  EXPECT_EQ(cache.DirtyCount(), 3u);

  auto taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  ASSERT_EQ(Keys(*taken), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ((*taken)[0].value, "v:new-a");
  EXPECT_EQ((*taken)[1].value, "v:new-b");
  EXPECT_EQ((*taken)[2].value, "v:changed-c");
  EXPECT_EQ(cache.DirtyCount(), 0u);
  EXPECT_FALSE(cache.IsDirty("a"));

  auto again = cache.TakeDirty();
  ASSERT_TRUE(IsOk(again));
  EXPECT_TRUE(again->empty());

  // The taken writes are what the caller commits.
  ASSERT_TRUE(IsOk(partition_->Commit(*taken, ++offset_, "")));
  EXPECT_EQ(MustGet(*partition_, "c"), "v:changed-c");
}

TEST_F(WriteBehindCacheTest, ManyChangesToOneKeyInAnIntervalYieldOneWrite) {
  Cache cache(partition_);
  TextValue* v = cache.Put("CSQU3054383", TextValue{"0"});
  for (int i = 1; i <= 50; ++i) {
    v->text = std::to_string(i);
    ASSERT_TRUE(IsOk(cache.MarkDirty("CSQU3054383")));
  }
  auto taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->front().value, "v:50");
}

TEST_F(WriteBehindCacheTest, EraseIsATombstoneThatHidesTheStoredValueWithoutReloading) {
  Seed({{"k", "stored"}});
  Cache cache(partition_);
  cache.Erase("k");
  EXPECT_EQ(TextOf(cache.Get("k")), "<none>");
  EXPECT_EQ(cache.GetStats().loads, 0u) << "a tombstone is never reloaded from the store";
  EXPECT_TRUE(cache.IsDirty("k"));

  auto taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->front().key, "k");
  EXPECT_EQ(taken->front().value, std::nullopt) << "a delete";

  // Until the store Commit the store still holds the old value; the cache
  // keeps answering "none".
  EXPECT_EQ(TextOf(cache.Get("k")), "<none>");
  EXPECT_EQ(cache.GetStats().loads, 0u);
  ASSERT_TRUE(IsOk(partition_->Commit(*taken, ++offset_, "")));
  EXPECT_EQ(MustGet(*partition_, "k"), std::nullopt);

  // A tombstone followed by a Put is a put again.
  cache.Put("k", TextValue{"reborn"});
  taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->front().value, "v:reborn");
}

TEST_F(WriteBehindCacheTest, MarkDirtyOfAKeyWithNoCachedValueIsNotFound) {
  Cache cache(partition_);
  Status s = cache.MarkDirty("never-loaded");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::kNotFound);
  cache.Erase("gone");
  EXPECT_EQ(CodeOf(cache.MarkDirty("gone")), Errc::kNotFound);
}

TEST_F(WriteBehindCacheTest, MarkDirtyMarksTheKeyItNamesWhicheverWasGotLast) {
  Seed({{"a", "1"}, {"b", "2"}, {"c", "3"}});
  Cache cache(partition_, /*max_entries=*/1);
  auto a = cache.Get("a");
  ASSERT_TRUE(IsOk(a));
  (*a)->text = "changed-a";
  ASSERT_EQ(TextOf(cache.Get("b")), "2");
  ASSERT_TRUE(IsOk(cache.MarkDirty("a")));  // not the one just got
  auto taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  ASSERT_EQ(Keys(*taken), std::vector<std::string>{"a"});
  EXPECT_EQ(taken->front().value, "v:changed-a");
  // "b" was got last and then evicted as clean: MarkDirty must not reach it
  // through anything remembered from before.
  EXPECT_FALSE(cache.Contains("b"));
  EXPECT_EQ(CodeOf(cache.MarkDirty("b")), Errc::kNotFound);
  // Got again after a Clear: loaded anew, and marked through the new entry.
  ASSERT_EQ(TextOf(cache.Get("c")), "3");
  cache.Clear();
  EXPECT_EQ(CodeOf(cache.MarkDirty("c")), Errc::kNotFound);
  auto c = cache.Get("c");
  ASSERT_TRUE(IsOk(c));
  (*c)->text = "changed-c";
  ASSERT_TRUE(IsOk(cache.MarkDirty("c")));
  taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  ASSERT_EQ(Keys(*taken), std::vector<std::string>{"c"});
  EXPECT_EQ(taken->front().value, "v:changed-c");
}

TEST_F(WriteBehindCacheTest, EvictsLeastRecentlyUsedCleanEntriesBeyondMaxEntries) {
  Seed({{"k1", "1"}, {"k2", "2"}, {"k3", "3"}, {"k4", "4"}, {"k5", "5"}});
  Cache cache(partition_, /*max_entries=*/3);
  for (std::string k : {"k1", "k2", "k3", "k4", "k5"}) ASSERT_EQ(TextOf(cache.Get(k)), k.substr(1));
  // Used again in the same commit interval: ordered by its first use in it.
  ASSERT_EQ(TextOf(cache.Get("k2")), "2");
  EXPECT_EQ(cache.Size(), 5u) << "nothing is evicted between TakeDirty calls";

  ASSERT_TRUE(IsOk(cache.TakeDirty()));
  EXPECT_EQ(cache.Size(), 3u);
  EXPECT_EQ(cache.GetStats().evictions, 2u);
  EXPECT_FALSE(cache.Contains("k1"));
  EXPECT_FALSE(cache.Contains("k2"));
  EXPECT_TRUE(cache.Contains("k3"));
  EXPECT_TRUE(cache.Contains("k4"));
  EXPECT_TRUE(cache.Contains("k5"));

  // In a later interval a use moves it to the front: k3, used now, outlives
  // k4, the least recently used. An evicted entry is loaded again on demand.
  EXPECT_EQ(TextOf(cache.Get("k1")), "1");
  EXPECT_EQ(cache.GetStats().loads, 6u);
  ASSERT_EQ(TextOf(cache.Get("k3")), "3");
  ASSERT_TRUE(IsOk(cache.TakeDirty()));
  EXPECT_EQ(cache.Size(), 3u);
  EXPECT_TRUE(cache.Contains("k1"));
  EXPECT_TRUE(cache.Contains("k3"));
  EXPECT_TRUE(cache.Contains("k5"));
  EXPECT_FALSE(cache.Contains("k4"));
}

TEST_F(WriteBehindCacheTest, FetchAheadHintsNeitherLoadNorCountNorReorder) {
  Seed({{"k1", "1"}, {"k2", "2"}, {"k3", "3"}});
  Cache cache(partition_, /*max_entries=*/2);
  ASSERT_EQ(TextOf(cache.Get("k1")), "1");
  ASSERT_EQ(TextOf(cache.Get("k2")), "2");
  ASSERT_TRUE(IsOk(cache.TakeDirty()));  // interval 2: k2 is the most recently used
  const auto stats = cache.GetStats();
  // Hints for cached, stored-only and unknown keys.
  for (std::string k : {"k1", "k2", "k3", "nope"}) {
    cache.Prefetch(k);
    cache.PrefetchEntry(k);
  }
  ASSERT_NE(cache.Peek("k1"), nullptr);
  EXPECT_EQ(cache.Peek("k1")->text, "1");
  EXPECT_EQ(cache.Peek("k3"), nullptr) << "Peek does not load from the store";
  EXPECT_EQ(cache.Peek("nope"), nullptr);
  EXPECT_FALSE(cache.Contains("k3"));
  EXPECT_EQ(cache.GetStats().hits, stats.hits);
  EXPECT_EQ(cache.GetStats().loads, stats.loads);
  // Peeking k1 did not make it recent: loading k3 and taking evicts k1.
  ASSERT_EQ(TextOf(cache.Get("k3")), "3");
  ASSERT_TRUE(IsOk(cache.TakeDirty()));
  EXPECT_FALSE(cache.Contains("k1"));
  EXPECT_TRUE(cache.Contains("k2"));
  // A tombstone peeks as no value.
  cache.Erase("k2");
  EXPECT_EQ(cache.Peek("k2"), nullptr);
  EXPECT_TRUE(cache.Contains("k2"));
}

TEST(StringViewHashAndEq, ShortKeysCompareByEveryByteAndHashEqualWhenEqual) {
  // The fast paths load 4 or 8 bytes from both ends: a difference anywhere,
  // at every length, must show.
  std::mt19937_64 rng(20261206);
  const StringViewHash hash;
  const StringViewEq eq;
  for (size_t n = 0; n <= 24; ++n) {
    for (int round = 0; round < 50; ++round) {
      std::string a(n, '\0');
      for (auto& c : a) c = static_cast<char>('A' + rng() % 26);
      std::string b = a;
      EXPECT_TRUE(eq(a, b));
      EXPECT_EQ(hash(a), hash(b));
      for (size_t i = 0; i < n; ++i) {
        std::string c = a;
        c[i] = static_cast<char>(c[i] == 'Z' ? 'A' : c[i] + 1);
        EXPECT_FALSE(eq(a, c)) << "length " << n << ", byte " << i;
      }
      EXPECT_FALSE(eq(a, a + "X"));
    }
  }
  // Container numbers that differ in their serial spread over the table:
  // absl reads the hash's low 7 bits and its high bits.
  std::set<size_t> low, high;
  for (int serial = 0; serial < 4096; ++serial) {
    char number[12];
    std::snprintf(number, sizeof number, "MSCU%06d%d", serial, serial % 10);
    const size_t h = hash(std::string_view(number, 11));
    low.insert(h & 0x7F);
    high.insert(h >> 52);
  }
  EXPECT_EQ(low.size(), 128u);
  EXPECT_GT(high.size(), 2400u);  // 2,589 expected of a uniform hash
}

TEST_F(WriteBehindCacheTest, NeverEvictsDirtyEntriesNorTheOnesJustTaken) {
  Seed({{"old", "stored"}, {"c1", "1"}, {"c2", "2"}});
  Cache cache(partition_, /*max_entries=*/1);
  cache.Put("d1", TextValue{"x"});  // the least recently used of all
  ASSERT_EQ(TextOf(cache.Get("c1")), "1");
  ASSERT_EQ(TextOf(cache.Get("c2")), "2");
  cache.Put("old", TextValue{"new"});  // dirty over a stored value
  cache.Put("d2", TextValue{"y"});

  auto taken = cache.TakeDirty();
  ASSERT_TRUE(IsOk(taken));
  EXPECT_EQ(Keys(*taken), (std::vector<std::string>{"d1", "d2", "old"}));
  // The clean entries went; the three just taken stay although max_entries is 1.
  EXPECT_FALSE(cache.Contains("c1"));
  EXPECT_FALSE(cache.Contains("c2"));
  EXPECT_EQ(cache.Size(), 3u);

  // Before the store Commit, a Get must not read the stale stored value.
  EXPECT_EQ(TextOf(cache.Get("old")), "new");
  const uint64_t loads = cache.GetStats().loads;
  ASSERT_TRUE(IsOk(partition_->Commit(*taken, ++offset_, "")));

  // The next TakeDirty may evict them, now clean and committed, down to the
  // most recently used one.
  ASSERT_TRUE(IsOk(cache.TakeDirty()));
  EXPECT_EQ(cache.Size(), 1u);
  EXPECT_TRUE(cache.Contains("old"));
  EXPECT_EQ(TextOf(cache.Get("d1")), "x") << "reloaded from the committed store";
  EXPECT_EQ(cache.GetStats().loads, loads + 1);
}

TEST_F(WriteBehindCacheTest, UndecodableStoredValueIsFatalAndNamesTheKey) {
  ASSERT_TRUE(IsOk(partition_->Commit({{"bad", "not-a-text-value"}}, ++offset_, "")));
  Cache cache(partition_);
  auto r = cache.Get("bad");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kFatal);
  EXPECT_NE(r.error().message.find("\"bad\""), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("partition 0"), std::string::npos) << r.error().message;
  EXPECT_FALSE(cache.Contains("bad"));
}

TEST_F(WriteBehindCacheTest, SerializeFailureTakesNothing) {
  Cache cache(partition_);
  cache.Put("good", TextValue{"g"});
  cache.Put("broken", TextValue{"b", /*fail_serialize=*/true});
  auto r = cache.TakeDirty();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kFatal);
  EXPECT_EQ(cache.DirtyCount(), 2u) << "both entries are still dirty";
}

TEST_F(WriteBehindCacheTest, ClearDropsDirtyEntriesSoGetReadsTheStoreAgain) {
  Seed({{"k", "committed"}});
  Cache cache(partition_);
  auto k = cache.Get("k");
  ASSERT_TRUE(IsOk(k));
  (*k)->text = "uncommitted";
  ASSERT_TRUE(IsOk(cache.MarkDirty("k")));
  cache.Put("new", TextValue{"uncommitted"});

  cache.Clear();  // the transaction aborted
  EXPECT_EQ(cache.Size(), 0u);
  EXPECT_EQ(cache.DirtyCount(), 0u);
  EXPECT_EQ(TextOf(cache.Get("k")), "committed");
  EXPECT_EQ(TextOf(cache.Get("new")), "<none>");
}

TEST_F(WriteBehindCacheTest, ContainerStateRoundTripsThroughCommitAndReopen) {
  v1::ContainerState state;
  state.set_container_number("CSQU3054383");
  state.set_first_event_ms(1'764'000'000'000);
  state.mutable_gps()->set_points_seen(50);
  {
    WriteBehindCache<v1::ContainerState> cache(partition_);
    cache.Put(state.container_number(), state);
    auto taken = cache.TakeDirty();
    ASSERT_TRUE(IsOk(taken));
    ASSERT_TRUE(IsOk(partition_->Commit(*taken, 17, "task-meta")));
  }
  store_.reset();
  store_ = MustOpen({.path = dir_.path()});
  ASSERT_NE(store_, nullptr);
  partition_ = MustPartition(*store_, 0);
  ASSERT_NE(partition_, nullptr);
  EXPECT_EQ(partition_->ChangelogCheckpoint(), 17);

  WriteBehindCache<v1::ContainerState> cache(partition_);
  auto loaded = cache.Get("CSQU3054383");
  ASSERT_TRUE(IsOk(loaded));
  ASSERT_NE(*loaded, nullptr);
  EXPECT_EQ((*loaded)->SerializeAsString(), state.SerializeAsString());
}

}  // namespace
}  // namespace boxwatch::state
