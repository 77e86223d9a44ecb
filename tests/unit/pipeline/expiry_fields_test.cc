#include "pipeline/expiry_fields.h"

#include <gtest/gtest.h>

#include "boxwatch/v1/state.pb.h"
#include "operators/pending_items.h"
#include "pipeline/task_core.h"

namespace boxwatch::pipeline {
namespace {

v1::ContainerState FullState() {
  v1::ContainerState s;
  s.set_container_number("CSQU3054383");
  s.add_manifest_versions()->set_container_number("CSQU3054383");
  for (int i = 0; i < 64; ++i) {
    auto* fix = s.mutable_gps()->add_points();
    fix->set_fix_time_ms(1794970800000 + i * 60000);
    fix->set_lat(13.08 + i * 0.001);
    fix->set_lon(100.88);
  }
  s.set_first_event_ms(1794970800000);
  s.set_last_event_ms(1794974580000);
  s.set_expires_at_ms(1797566580000);
  s.set_evaluated_through_ms(1794974000000);
  return s;
}

TEST(ExpiryFields, ReadsLastEventTimeAndPendingWithoutDecodingTheRest) {
  v1::ContainerState s = FullState();
  ExpiryFields f;
  ASSERT_TRUE(ReadExpiryFields(s.SerializeAsString(), &f));
  EXPECT_EQ(f.last_event_ms, 1794974580000);
  EXPECT_FALSE(f.pending);

  s.add_pending()->set_time_ms(1794974580000);  // listed as states stored before pending_items list them
  ASSERT_TRUE(ReadExpiryFields(s.SerializeAsString(), &f));
  EXPECT_EQ(f.last_event_ms, 1794974580000);
  EXPECT_TRUE(f.pending);

  s.clear_pending();
  operators::MutablePendingItems(s.mutable_pending_items()).Insert({1794974580000, 2});
  ASSERT_TRUE(ReadExpiryFields(s.SerializeAsString(), &f));
  EXPECT_TRUE(f.pending);
}

TEST(ExpiryFields, ReadsTheProgressTheOwnBoundCountsFromAsTheStateGivesIt) {
  v1::ContainerState s = FullState();
  s.set_due_ms(1794975000000);
  s.set_progress_ms(1794974580000);
  ExpiryFields f;
  ASSERT_TRUE(ReadExpiryFields(s.SerializeAsString(), &f));
  EXPECT_EQ(f.due_ms, 1794975000000);
  EXPECT_EQ(f.own_progress_ms, OwnProgress(s));
  s.mutable_gps()->set_progress_ms(1794974000000);  // the tracker's clock behind: it counts
  ASSERT_TRUE(ReadExpiryFields(s.SerializeAsString(), &f));
  EXPECT_EQ(f.own_progress_ms, 1794974000000);
  EXPECT_EQ(f.own_progress_ms, OwnProgress(s));
  s.mutable_gps()->set_progress_ms(1794979000000);  // ahead: the container's progress counts
  ASSERT_TRUE(ReadExpiryFields(s.SerializeAsString(), &f));
  EXPECT_EQ(f.own_progress_ms, OwnProgress(s));
  EXPECT_EQ(f.own_progress_ms, 1794974580000);
}

TEST(ExpiryFields, EmptyStateHasNothingAndBrokenBytesAreRefused) {
  ExpiryFields f;
  ASSERT_TRUE(ReadExpiryFields("", &f));
  EXPECT_EQ(f.last_event_ms, 0);
  EXPECT_FALSE(f.pending);
  const std::string bytes = FullState().SerializeAsString();
  EXPECT_FALSE(ReadExpiryFields(std::string_view(bytes).substr(0, bytes.size() - 3), &f));
  EXPECT_FALSE(ReadExpiryFields("\xff\xff\xff", &f));
}

}  // namespace
}  // namespace boxwatch::pipeline
