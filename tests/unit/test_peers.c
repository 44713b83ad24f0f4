/* test_peers: the cluster's table of what every other node has (app/cluster/peers.c).
 *
 * The cluster engine fills the table from Redis and the hub reads it on every message to another
 * node, so what it says is what users see: who is online elsewhere (presence), which nodes a message
 * to a user or a room is sent to, and the counts behind /metrics (peers_count is the nodes_alive gauge;
 * peers_with_users is what a broadcast reports as delivered, peers_having on rooms what a publish
 * reports). Checked here directly: single events and their sequence numbers (an old event or snapshot
 * never undoes a newer one), snapshots and the joined/left lists the hub is told, a node seen again
 * with the same state, the id bound, room members, a node whose hash expired (it leaves the node set:
 * peers_unlisted, then peers_drop, as clusterpresence.c does) and one that comes back, and readers on
 * one thread while another applies events. Names lists come back in no particular order, so they are
 * sorted before they are compared. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "check.h"
#include "dict.h"
#include "peers.h"

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The names sorted and joined with commas ("" when none), into a static buffer; frees the list. */
static const char *joined(struct names *x) {
    static char out[1024];
    size_t len = 0;
    if (x->n) qsort(x->v, x->n, sizeof *x->v, by_name);
    out[0] = '\0';
    for (size_t i = 0; i < x->n; i++) len += snprintf(out + len, sizeof out - len, "%s%s", i ? "," : "", x->v[i]);
    names_free(x);
    return out;
}

/* A dict holding the NULL-terminated keys (values unused), as clusterpresence.c builds from a hash. */
static struct dict *dict_of(const char *first, ...) {
    struct dict *d = dict_new();
    va_list ap;
    va_start(ap, first);
    for (const char *k = first; k; k = va_arg(ap, const char *)) dict_add(d, k, d);
    va_end(ap);
    return d;
}

/* The nodes that have `name`, sorted and joined. */
static const char *having(struct peers *p, int rooms, const char *name) {
    peer_id ids[8];
    struct names x = {0};
    size_t n = peers_having(p, rooms, name, ids, 8);
    for (size_t i = 0; i < n && i < 8; i++) names_push(&x, ids[i]);
    return joined(&x);
}

static void add_user(void *arg, const char *user) { names_push(arg, user); }

/* peers_room_users' calls, sorted and joined. */
static const char *room_users(struct peers *p, const char *room) {
    struct names x = {0};
    peers_room_users(p, room, add_user, &x);
    return joined(&x);
}

/* Replaces node id's state with the given users (no rooms); returns "joined|left", each sorted. */
static const char *snapshot(struct peers *p, const char *id, uint64_t seq, struct dict *users) {
    static char out[2048];
    struct names gained = {0}, lost = {0};
    peers_snapshot(p, id, seq, users, dict_new(), dict_new(), &gained, &lost);
    snprintf(out, sizeof out, "%s|", joined(&gained));
    size_t len = strlen(out);
    snprintf(out + len, sizeof out - len, "%s", joined(&lost));
    return out;
}

static void test_names_list(void) {
    struct names x = {0};
    char name[16] = "alice";
    names_push(&x, name);
    strcpy(name, "XXXXX"); /* the list keeps its own copy */
    for (int i = 0; i < 40; i++) { /* past the first allocation (16) twice */
        snprintf(name, sizeof name, "u%02d", i);
        names_push(&x, name);
    }
    CHECK_EQ_INT(x.n, 41);
    CHECK_EQ_STR(x.v[0], "alice");
    CHECK_EQ_STR(x.v[40], "u39");
    names_free(&x);
    CHECK(x.v == NULL && x.n == 0 && x.cap == 0);
    names_push(&x, "again"); /* a freed list is an empty one, usable again */
    CHECK_EQ_STR(joined(&x), "again");
    names_free(&x); /* twice is harmless */
}

static void test_empty_table(void) {
    struct peers *p = peers_new();
    struct names gone = {0};
    CHECK(p != NULL);
    CHECK_EQ_INT(peers_count(p), 0);
    CHECK_EQ_INT(peers_with_users(p), 0);
    CHECK_EQ_INT(peers_having(p, 0, "alice", NULL, 0), 0);
    CHECK_EQ_STR(room_users(p, "lobby"), "");
    CHECK_EQ_INT(peers_drop(p, "n1", &gone), 0);
    CHECK_EQ_INT(gone.n, 0);
    peers_unlisted(p, NULL, 0, &gone);
    CHECK_EQ_INT(gone.n, 0);
    /* a leave from a node never seen does not make it known */
    CHECK_EQ_INT(peers_event(p, "n1", 5, "alice", 0, 0), 0);
    CHECK_EQ_INT(peers_event(p, "n1", 6, "lobby", 1, 0), 0);
    CHECK_EQ_INT(peers_count(p), 0);
    peers_free(p);
    peers_free(NULL);
}

static void test_events_and_sequence(void) {
    struct peers *p = peers_new();
    CHECK_EQ_INT(peers_event(p, "n1", 10, "alice", 0, 1), 1); /* a J makes the node known */
    CHECK_EQ_INT(peers_count(p), 1);
    CHECK_EQ_INT(peers_with_users(p), 1);
    CHECK_EQ_STR(having(p, 0, "alice"), "n1");
    CHECK_EQ_INT(peers_event(p, "n1", 11, "alice", 0, 1), 0); /* already there: no news for the hub */
    CHECK_EQ_INT(peers_event(p, "n1", 11, "bob", 0, 1), 0);   /* not newer than 11: ignored */
    CHECK_EQ_INT(peers_event(p, "n1", 3, "bob", 0, 1), 0);    /* older: ignored */
    CHECK_EQ_STR(having(p, 0, "bob"), "");
    CHECK_EQ_INT(peers_event(p, "n1", 12, "bob", 0, 1), 1);
    CHECK_EQ_STR(having(p, 0, "bob"), "n1");

    /* users, rooms and members are three separate sets */
    CHECK_EQ_INT(peers_event(p, "n1", 13, "lobby", 1, 1), 1);
    CHECK_EQ_STR(having(p, 1, "lobby"), "n1");
    CHECK_EQ_STR(having(p, 0, "lobby"), "");
    CHECK_EQ_STR(having(p, 1, "alice"), "");
    CHECK_EQ_INT(peers_event(p, "n1", 14, "lobby alice", PEERS_MEMBER, 1), 1);
    CHECK_EQ_STR(room_users(p, "lobby"), "alice");
    CHECK_EQ_STR(having(p, 0, "lobby alice"), "");
    CHECK_EQ_STR(having(p, 1, "lobby alice"), "");

    /* a second node with alice: both get her messages; the counts follow */
    CHECK_EQ_INT(peers_event(p, "n2", 1, "alice", 0, 1), 1); /* each node has its own sequence */
    CHECK_EQ_STR(having(p, 0, "alice"), "n1,n2");
    CHECK_EQ_INT(peers_count(p), 2);
    CHECK_EQ_INT(peers_with_users(p), 2);

    /* leaves: an old one is ignored, a new one removes, a repeated one is no news */
    CHECK_EQ_INT(peers_event(p, "n2", 1, "alice", 0, 0), 0);
    CHECK_EQ_STR(having(p, 0, "alice"), "n1,n2");
    CHECK_EQ_INT(peers_event(p, "n2", 2, "alice", 0, 0), 1);
    CHECK_EQ_INT(peers_event(p, "n2", 3, "alice", 0, 0), 0);
    CHECK_EQ_STR(having(p, 0, "alice"), "n1");
    CHECK_EQ_INT(peers_count(p), 2);      /* a node with no user is still alive */
    CHECK_EQ_INT(peers_with_users(p), 1); /* but no longer counted by a broadcast */
    CHECK_EQ_INT(peers_event(p, "n1", 15, "lobby alice", PEERS_MEMBER, 0), 1);
    CHECK_EQ_STR(room_users(p, "lobby"), "");
    CHECK_EQ_INT(peers_event(p, "n1", 16, "lobby", 1, 0), 1);
    CHECK_EQ_STR(having(p, 1, "lobby"), "");
    CHECK_EQ_INT(peers_event(p, "n1", 17, "alice", 0, 0), 1);
    CHECK_EQ_INT(peers_event(p, "n1", 18, "bob", 0, 0), 1);
    CHECK_EQ_INT(peers_with_users(p), 0);
    CHECK_EQ_INT(peers_count(p), 2);
    peers_free(p);
}

/* peers_having reports every node but copies at most max ids. */
static void test_having_bound(void) {
    struct peers *p = peers_new();
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "n%d", i);
        peers_event(p, id, 1, "alice", 0, 1);
    }
    peer_id ids[3];
    strcpy(ids[2], "untouched");
    CHECK_EQ_INT(peers_having(p, 0, "alice", ids, 2), 5);
    CHECK(strcmp(ids[0], ids[1]) != 0);
    for (int i = 0; i < 2; i++) CHECK(ids[i][0] == 'n' && ids[i][1] >= '0' && ids[i][1] <= '4' && ids[i][2] == '\0');
    CHECK_EQ_STR(ids[2], "untouched");
    CHECK_EQ_INT(peers_having(p, 0, "alice", NULL, 0), 5);
    CHECK_EQ_INT(peers_having(p, 0, "bob", ids, 3), 0);
    CHECK_EQ_INT(peers_count(p), 5);
    CHECK_EQ_INT(peers_with_users(p), 5);
    peers_free(p);
}

/* The longest node id (SB_NAME_MAX characters) is kept whole and found again. */
static void test_id_bound(void) {
    struct peers *p = peers_new();
    char id[SB_NAME_MAX + 1];
    memset(id, 'x', SB_NAME_MAX);
    id[SB_NAME_MAX] = '\0';
    peers_event(p, id, 1, "alice", 0, 1);
    CHECK_EQ_INT(peers_event(p, id, 2, "bob", 0, 1), 1); /* the same node, not a second one */
    CHECK_EQ_INT(peers_count(p), 1);
    CHECK_EQ_STR(having(p, 0, "bob"), id);
    struct names out = {0};
    const char *listed[] = {id};
    peers_unlisted(p, listed, 1, &out);
    CHECK_EQ_INT(out.n, 0);
    names_free(&out);
    CHECK_EQ_INT(peers_drop(p, id, &out), 1);
    CHECK_EQ_STR(joined(&out), "alice,bob");
    peers_free(p);
}

static void test_snapshots(void) {
    struct peers *p = peers_new();
    /* a node first read from its hash: everyone on it joins */
    struct names in = {0}, out = {0};
    peers_snapshot(p, "n1", 10, dict_of("alice", "bob", NULL), dict_of("lobby", NULL), dict_of("lobby alice", NULL),
                   &in, &out);
    CHECK_EQ_STR(joined(&in), "alice,bob");
    CHECK_EQ_STR(joined(&out), "");
    CHECK_EQ_INT(peers_count(p), 1);
    CHECK_EQ_INT(peers_with_users(p), 1);
    CHECK_EQ_STR(having(p, 0, "bob"), "n1");
    CHECK_EQ_STR(having(p, 1, "lobby"), "n1");
    CHECK_EQ_STR(room_users(p, "lobby"), "alice");

    /* the next read: only the differences are news; rooms and members are replaced too */
    CHECK_EQ_STR(snapshot(p, "n1", 11, dict_of("bob", "carol", NULL)), "carol|alice");
    CHECK_EQ_STR(having(p, 0, "alice"), "");
    CHECK_EQ_STR(having(p, 1, "lobby"), "");
    CHECK_EQ_STR(room_users(p, "lobby"), "");
    /* the node seen again, unchanged, on the next tick (same sequence): nothing joins or leaves */
    CHECK_EQ_STR(snapshot(p, "n1", 11, dict_of("bob", "carol", NULL)), "|");
    CHECK_EQ_STR(having(p, 0, "carol"), "n1");
    /* a snapshot older than the table is dropped whole (its dicts freed: ASan would see a leak) */
    CHECK_EQ_STR(snapshot(p, "n1", 7, dict_of("zed", NULL)), "|");
    CHECK_EQ_STR(having(p, 0, "zed"), "");
    CHECK_EQ_STR(having(p, 0, "bob"), "n1");

    /* events against snapshots: an event no newer than the snapshot is ignored; a snapshot read just
     * before a newer event (an older sequence) cannot undo it */
    CHECK_EQ_INT(peers_event(p, "n1", 11, "dave", 0, 1), 0);
    CHECK_EQ_INT(peers_event(p, "n1", 13, "dave", 0, 1), 1);
    CHECK_EQ_STR(snapshot(p, "n1", 12, dict_of("bob", "carol", NULL)), "|");
    CHECK_EQ_STR(having(p, 0, "dave"), "n1");
    CHECK_EQ_STR(snapshot(p, "n1", 14, dict_of("bob", "carol", NULL)), "|dave");

    /* everyone gone from the node: it stays known, with no users */
    CHECK_EQ_STR(snapshot(p, "n1", 15, dict_new()), "|bob,carol");
    CHECK_EQ_INT(peers_count(p), 1);
    CHECK_EQ_INT(peers_with_users(p), 0);
    peers_free(p); /* frees the dicts the table took over */
}

static void test_room_members(void) {
    struct peers *p = peers_new();
    struct names in = {0}, out = {0};
    peers_snapshot(p, "n1", 1, dict_new(), dict_of("lobby", "lobby2", "lob", NULL),
                   dict_of("lobby alice", "lobby2 carol", "lob dave", NULL), &in, &out);
    peers_snapshot(p, "n2", 1, dict_new(), dict_of("lobby", NULL), dict_of("lobby alice", "lobby bob", NULL), &in,
                   &out);
    CHECK_EQ_INT(in.n + out.n, 0); /* members are not users: nobody joined */
    CHECK_EQ_STR(room_users(p, "lobby"), "alice,alice,bob"); /* once per node that has the member */
    CHECK_EQ_STR(room_users(p, "lob"), "dave");              /* a room's name is not a prefix match */
    CHECK_EQ_STR(room_users(p, "lobby2"), "carol");
    CHECK_EQ_STR(room_users(p, "lobby alice"), "");
    CHECK_EQ_STR(room_users(p, "nowhere"), "");
    CHECK_EQ_STR(having(p, 1, "lobby"), "n1,n2");
    CHECK_EQ_INT(peers_with_users(p), 0);
    /* --presence rooms: how many nodes have a member (a room hears of a user once), and one node's
     * members, to compare before and after a snapshot or a drop */
    CHECK_EQ_INT(peers_having_member(p, "lobby", "alice"), 2);
    CHECK_EQ_INT(peers_having_member(p, "lobby", "bob"), 1);
    CHECK_EQ_INT(peers_having_member(p, "lob", "alice"), 0);
    peers_members_of(p, "n2", &in);
    CHECK_EQ_STR(joined(&in), "lobby alice,lobby bob");
    peers_members_of(p, "n9", &in);
    CHECK_EQ_STR(joined(&in), "");
    CHECK_EQ_INT(peers_drop(p, "n2", &out), 1);
    names_free(&out);
    CHECK_EQ_INT(peers_having_member(p, "lobby", "alice"), 1);
    CHECK_EQ_INT(peers_having_member(p, "lobby", "bob"), 0);
    peers_free(p);
}

/* A node whose hash expired (its TTL passed without a refresh) drops out of the node set; the next
 * SMEMBERS lists only the live ones, and clusterpresence.c drops what peers_unlisted names. */
static void test_expiry_and_return(void) {
    struct peers *p = peers_new();
    peers_event(p, "n1", 1, "alice", 0, 1);
    peers_event(p, "n2", 1, "alice", 0, 1);
    peers_event(p, "n2", 2, "bob", 0, 1);
    peers_event(p, "n2", 3, "lobby", 1, 1);
    peers_event(p, "n2", 4, "lobby bob", PEERS_MEMBER, 1);
    peers_event(p, "n3", 1, "lobby", 1, 1);
    CHECK_EQ_INT(peers_count(p), 3);
    CHECK_EQ_INT(peers_with_users(p), 2);

    const char *alive[] = {"n9", "n1"}; /* n9: listed but not read yet; n2 and n3 expired */
    struct names out = {0};
    peers_unlisted(p, alive, 2, &out);
    CHECK_EQ_STR(joined(&out), "n2,n3");
    CHECK_EQ_INT(peers_count(p), 3); /* listing drops nothing */

    CHECK_EQ_INT(peers_drop(p, "n2", &out), 1);
    CHECK_EQ_STR(joined(&out), "alice,bob"); /* the hub is told each loses a node */
    CHECK_EQ_INT(peers_drop(p, "n3", &out), 1);
    CHECK_EQ_STR(joined(&out), "");
    CHECK_EQ_INT(peers_drop(p, "n3", &out), 0);
    CHECK_EQ_INT(peers_count(p), 1);
    CHECK_EQ_INT(peers_with_users(p), 1);
    CHECK_EQ_STR(having(p, 0, "alice"), "n1");
    CHECK_EQ_STR(having(p, 0, "bob"), "");
    CHECK_EQ_STR(having(p, 1, "lobby"), "");
    CHECK_EQ_STR(room_users(p, "lobby"), "");
    peers_unlisted(p, alive, 2, &out);
    CHECK_EQ_STR(joined(&out), "");

    /* n2 comes back (restarted, or its refresh got through again): the table forgot its sequence,
     * so its state is taken whatever the number, and its users join again */
    CHECK_EQ_STR(snapshot(p, "n2", 1, dict_of("bob", NULL)), "bob|");
    CHECK_EQ_STR(having(p, 0, "bob"), "n2");
    CHECK_EQ_INT(peers_count(p), 2);
    CHECK_EQ_INT(peers_with_users(p), 2);

    /* the whole node set expired (Redis emptied): every node is unlisted */
    peers_unlisted(p, NULL, 0, &out);
    CHECK_EQ_STR(joined(&out), "n1,n2");
    peers_free(p);
}

/* The engine thread applies events while client loops read (peers.h: one lock guards the table). */
#define ROUNDS 2000

static void *writer(void *arg) {
    struct peers *p = arg;
    for (uint64_t i = 1; i <= ROUNDS; i++) {
        peers_event(p, "w", 2 * i, "alice", 0, 1);
        peers_event(p, "w", 2 * i + 1, "alice", 0, 0);
    }
    peers_event(p, "w", 2 * ROUNDS + 2, "bob", 0, 1);
    return NULL;
}

static void count_user(void *arg, const char *user) { ++*(int *)arg; }

static void test_concurrent_readers(void) {
    struct peers *p = peers_new();
    peers_event(p, "r", 1, "lobby carol", PEERS_MEMBER, 1);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, writer, p), 0);
    int odd = 0;
    for (int i = 0; i < ROUNDS; i++) {
        peer_id ids[2];
        size_t n = peers_having(p, 0, "alice", ids, 2);
        odd += n > 1 || (n == 1 && strcmp(ids[0], "w") != 0);
        int members = 0;
        peers_room_users(p, "lobby", count_user, &members);
        odd += members != 1;
        odd += peers_count(p) < 1 || peers_count(p) > 2 || peers_with_users(p) > 1;
    }
    pthread_join(t, NULL);
    CHECK_EQ_INT(odd, 0);
    CHECK_EQ_STR(having(p, 0, "alice"), "");
    CHECK_EQ_STR(having(p, 0, "bob"), "w");
    CHECK_EQ_INT(peers_count(p), 2);
    CHECK_EQ_INT(peers_with_users(p), 1);
    peers_free(p);
}

int main(void) {
    test_names_list();
    test_empty_table();
    test_events_and_sequence();
    test_having_bound();
    test_id_bound();
    test_snapshots();
    test_room_members();
    test_expiry_and_return();
    test_concurrent_readers();
    return check_done();
}
