/* The pure parts of the stall watchdog (trainer/base/watchdog.h): the limit rule, the list of ranks,
 * the phase text and the diagnosis line built from the other ranks' answers. The thread and its
 * questions over MPI are tested end to end by tests/dist_stall.sh. */
#include <string.h>

#include "tests/test_util.h"
#include "trainer/base/watchdog.h"

static void test_limit(void) {
  EXPECT(watchdog_limit_s(-1, 1, 10) == 0, "negative: off");
  EXPECT(watchdog_limit_s(-0.5, 0, 10) == 0, "any negative: off");
  EXPECT(watchdog_limit_s(7, 1, 100) == 7, "a user value wins, even below 20 steps");
  EXPECT(watchdog_limit_s(7, 0, 0) == 7, "a user value applies to every phase");
  EXPECT(watchdog_limit_s(0, 1, 0) == WATCHDOG_STEP_FLOOR_S, "auto, no step yet: the step floor");
  EXPECT(watchdog_limit_s(0, 1, 2) == WATCHDOG_STEP_FLOOR_S, "auto, fast steps: the floor");
  EXPECT(watchdog_limit_s(0, 1, 60) == 60 * WATCHDOG_STEP_FACTOR, "auto, slow steps: 20 steps");
  EXPECT(watchdog_limit_s(0, 0, 2) == WATCHDOG_OTHER_FLOOR_S, "auto, outside a step: the larger floor");
  EXPECT(watchdog_limit_s(0, 0, 100) == 100 * WATCHDOG_STEP_FACTOR, "auto, outside a step, slow steps");
  EXPECT(WATCHDOG_OTHER_FLOOR_S >= WATCHDOG_STEP_FLOOR_S, "checkpoints and start-up get at least a step's limit");
}

static void test_rank_list(void) {
  char b[256];
  int one[] = {3}, some[] = {1, 3, 4, 5, 9}, pair[] = {0, 1};
  EXPECT(!strcmp(watchdog_rank_list(b, sizeof b, one, 1), "rank 3"), "%s", b);
  EXPECT(!strcmp(watchdog_rank_list(b, sizeof b, some, 5), "ranks 1, 3-5, 9"), "%s", b);
  EXPECT(!strcmp(watchdog_rank_list(b, sizeof b, pair, 2), "ranks 0-1"), "%s", b);
  /* 1000 scattered ranks: cut short, with the count of the rest, within the buffer */
  int many[1000];
  for (int i = 0; i < 1000; i++) many[i] = 2 * i;
  watchdog_rank_list(b, sizeof b, many, 1000);
  EXPECT(strlen(b) < sizeof b && strstr(b, "more") != NULL && !strncmp(b, "ranks 0, 2, 4", 13), "%s", b);
  int left = 0, shown = 1; /* numbers shown (commas + 1) + left = 1000 */
  for (const char *p = strchr(b, ' '); p && *p; p++)
    if (*p == ',') shown++;
  sscanf(strstr(b, "and ") + 4, "%d", &left);
  EXPECT(shown + left == 1000, "%d shown + %d left in '%s'", shown, left, b);
}

static void test_phase_text(void) {
  char b[64];
  watchdog_phase_text(b, sizeof b, LV_PHASE_STEP, 12);
  EXPECT(!strcmp(b, "step 12"), "%s", b);
  watchdog_phase_text(b, sizeof b, LV_PHASE_CHECKPOINT, 20);
  EXPECT(!strcmp(b, "checkpoint at step 20"), "%s", b);
  watchdog_phase_text(b, sizeof b, LV_PHASE_EVAL, 10);
  EXPECT(!strcmp(b, "evaluation after step 10"), "%s", b);
  watchdog_phase_text(b, sizeof b, LV_PHASE_EVAL, -1);
  EXPECT(!strcmp(b, "evaluation"), "%s", b);
  watchdog_phase_text(b, sizeof b, LV_PHASE_STARTUP, 3);
  EXPECT(!strcmp(b, "start-up"), "%s", b);
}

static watchdog_answer waiting(const char *phase, const char *what, double s) {
  watchdog_answer a = {1, 1, s, s, "", ""};
  snprintf(a.phase, sizeof a.phase, "%s", phase);
  snprintf(a.what, sizeof a.what, "%s", what);
  return a;
}

static void test_describe(void) {
  char b[2048];
  watchdog_answer a[6];
  memset(a, 0, sizeof a); /* 0: me; 1, 3: silent; 2, 5: arrived; 4: computing elsewhere */
  a[2] = waiting("step 12", "gradient reduction", 31);
  a[5] = waiting("step 12", "gradient reduction", 30);
  a[4] = (watchdog_answer){1, 0, 41, 0, "step 12", ""};
  watchdog_describe(b, sizeof b, 0, "step 12", "gradient reduction", 31, a, 6);
  EXPECT(strstr(b, "step 12: gradient reduction has not completed after 31 s:") == b, "%s", b);
  EXPECT(strstr(b, "ranks 1, 3 did not arrive (no answer within 3 s: stopped, hung or dead)") != NULL, "%s", b);
  EXPECT(strstr(b, "rank 4 did not arrive: it is in step 12 for 41 s (computing or blocked in I/O)") != NULL, "%s", b);
  EXPECT(strstr(b, "ranks 0, 2, 5 arrived and wait") != NULL, "%s", b);
  EXPECT(b[strlen(b) - 1] != ';', "no dangling separator: %s", b);
  /* a rank waiting in another collective did not arrive either, and says where it waits */
  memset(a, 0, sizeof a);
  a[0] = waiting("checkpoint at step 20", "barrier", 5);
  watchdog_describe(b, sizeof b, 1, "checkpoint at step 20", "HDF5 collective write", 40, a, 2);
  EXPECT(strstr(b, "rank 0 did not arrive: it waits in checkpoint at step 20: barrier for 5 s") != NULL, "%s", b);
  EXPECT(strstr(b, "rank 1 arrived and waits") != NULL, "%s", b);
  /* everyone arrived: the collective itself is stuck */
  a[0] = waiting("step 3", "gradient reduction", 40);
  watchdog_describe(b, sizeof b, 1, "step 3", "gradient reduction", 40, a, 2);
  EXPECT(strstr(b, "every rank arrived and waits: the collective itself is stuck") != NULL, "%s", b);
  EXPECT(strstr(b, "did not arrive") == NULL, "%s", b);
  /* a small buffer is cut, never overrun */
  char small[40];
  memset(a, 0, sizeof a);
  watchdog_describe(small, sizeof small, 0, "step 12", "gradient reduction", 31, a, 6);
  EXPECT(strlen(small) < sizeof small, "%zu", strlen(small));
}

int main(void) {
  test_limit();
  test_rank_list();
  test_phase_text();
  test_describe();
  return tu_finish("test_watchdog");
}
