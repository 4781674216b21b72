/* smartgroups.core._native: the two hot loops of a member event, in C (see extension.py).
 *
 * 1. The evaluator of condition trees (Program). A tree arrives lowered (conditions/native.py)
 * into a flat, pre-order array of nodes; Program(nodes) keeps that array contiguous in one
 * object, and calling a Program with (member, now) evaluates it with short-circuits, exactly
 * as the Python predicate of the same tree does (evaluate.py states the semantics; the property tests hold the two to the
 * same answers). Deciding a group so touches one object and the values it compares, instead
 * of a function, a code object, its bytecode and its constants: with ten thousand groups that
 * is what keeps a member event's decisions cheap.
 *
 * Each trigger is its positive twin plus a negate bit, and one of these conversions:
 *   STR   a str value, folded (ASCII here, anything else through the Python fold), compared
 *   BOOL  a bool value, compared
 *   NUM   an int or float value that is not a bool, compared
 *   DATE  a str value read as an instant (the parse_instant memo, else parse_instant), compared
 *   AGE   a str value read as an instant, and now minus that instant (a timedelta), compared
 *   OPTIONS_ANY / OPTIONS_ALL  a list/tuple/set of str (every item a str): any folded item is
 *         in the target / the target is a subset of the folded items
 *   GROUPS_ANY / GROUPS_ALL  the member's group set meets / contains the target ids
 *   TEST  anything else: the trigger's compiled Python test, test(value, now)
 * and a comparison: <, <=, ==, >, >= (Python's rich comparison), BETWEEN (low <= v <= high),
 * IN (the target set contains the value), or for folded text CONTAINS, STARTS or ENDS (with
 * the target text).
 *
 * 2. The cascade (cascade()): matching.cascade, with matching.python_cascade as its reference.
 * The start groups are queued in a min-heap on (rank, order queued); each is decided once, in
 * that order: by the caller's decide(group_id, groups_now) or, with a shortcut, for an active
 * smart group not exempt, as `eligible and program(member, now)` by the evaluator above, with
 * the member's source mappings read once for the whole cascade. A group that names a flipped
 * group sees the member's groups with the flips applied: the evaluator's has_any/has_all read
 * `current` and toggle the flipped ids, so the updated set is only built for a test that reads
 * it whole (or for decide). A flip queues the groups that name the flipped one.
 *
 * Errors are Python exceptions, as in the Python code; with the values a snapshot holds there
 * are none (evaluation is total).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

enum { N_ALL = 0, N_ANY = 1, N_NOT = 2, N_TRIGGER = 3 };
enum { S_PROFILE = 0, S_PROPERTY = 1, S_ANSWER = 2, S_GROUPS = 3, S_COUNT = 4 };
enum {
    K_STR = 0,
    K_BOOL = 1,
    K_NUM = 2,
    K_DATE = 3,
    K_OPTIONS_ANY = 4,
    K_GROUPS_ANY = 5,
    K_GROUPS_ALL = 6,
    K_AGE = 7,
    K_OPTIONS_ALL = 8,
    K_TEST = 9,
};
/* comparisons 0..5 are Py_LT .. Py_GE */
enum { C_BETWEEN = 6, C_IN = 7, C_CONTAINS = 8, C_STARTS = 9, C_ENDS = 10, C_LAST = C_ENDS };

typedef struct {
    unsigned char kind;
    unsigned char source;
    unsigned char conv;
    unsigned char cmp;
    unsigned char negate;
    Py_ssize_t size; /* nodes in this subtree, itself included */
    PyObject *key;   /* the field's key in its source mapping (str), or NULL */
    PyObject *target; /* the compared value (BETWEEN: the low bound) or the test, or NULL */
    PyObject *high;   /* BETWEEN: the high bound, else NULL */
} Node;

typedef struct {
    PyObject_VAR_HEAD
    vectorcallfunc vectorcall;
    Node nodes[1];
} Program;

typedef struct {
    PyObject *member;
    PyObject *now;
    PyObject *sources[S_COUNT]; /* owned, read on first use */
    /* A cascade's view of a member whose groups changed: the groups are sources[S_GROUPS]
     * (borrowed) with the membership of each group in `flipped` (borrowed) toggled, without
     * building that set unless a test other than has_any/has_all reads it (`rebuilt`, owned). */
    PyObject *flipped;
    PyObject *rebuilt;
} Context;

/* Set once by configure(): the Python fold of a str, parse_instant and its memo. */
static PyObject *fold_fn = NULL;
static PyObject *instant_fn = NULL;
static PyObject *instant_memo = NULL;
static PyObject *source_names[S_COUNT];
static PyObject *get_name = NULL;

static int eval_node(const Node *nodes, Py_ssize_t at, Context *ctx);

/* -- reading values ------------------------------------------------------------------------ */

static PyObject *
source_of(Context *ctx, int source)
{
    PyObject *found = ctx->sources[source];
    if (found == NULL) {
        found = ctx->sources[source] = PyObject_GetAttr(ctx->member, source_names[source]);
    }
    return found;
}

/* The node's field value (a new reference; None when missing), NULL on error. */
static PyObject *
read_value(const Node *node, Context *ctx)
{
    PyObject *mapping = source_of(ctx, node->source);
    if (mapping == NULL) {
        return NULL;
    }
    if (node->source == S_GROUPS) {
        if (ctx->flipped != NULL && node->conv != K_GROUPS_ANY && node->conv != K_GROUPS_ALL) {
            if (ctx->rebuilt == NULL) {
                ctx->rebuilt = PyNumber_Xor(mapping, ctx->flipped);
            }
            return Py_XNewRef(ctx->rebuilt);
        }
        return Py_NewRef(mapping);
    }
    if (PyDict_CheckExact(mapping)) {
        PyObject *value = PyDict_GetItemWithError(mapping, node->key);
        if (value == NULL) {
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        }
        return Py_NewRef(value);
    }
    return PyObject_CallMethodOneArg(mapping, get_name, node->key);
}

/* -- conversions --------------------------------------------------------------------------- */

static inline int
is_upper_ascii(Py_UCS1 c)
{
    return c >= 'A' && c <= 'Z';
}

/* str.lower() of one ASCII character. */
static inline Py_UCS1
lower_ascii(Py_UCS1 c)
{
    return is_upper_ascii(c) ? (Py_UCS1)(c + ('a' - 'A')) : c;
}

/* The folded text of a str (a new reference). Exact ASCII strs are lowered here, as
 * str.lower() does; anything else goes through the Python fold (which a subclass may steer). */
static PyObject *
fold_text(PyObject *text)
{
    if (PyUnicode_CheckExact(text) && PyUnicode_IS_ASCII(text)) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(text);
        const Py_UCS1 *data = PyUnicode_1BYTE_DATA(text);
        Py_ssize_t i = 0;
        while (i < length && !is_upper_ascii(data[i])) {
            i++;
        }
        if (i == length) {
            return Py_NewRef(text);
        }
        PyObject *lowered = PyUnicode_New(length, 127);
        if (lowered == NULL) {
            return NULL;
        }
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(lowered);
        for (Py_ssize_t j = 0; j < length; j++) {
            out[j] = lower_ascii(data[j]);
        }
        return lowered;
    }
    return PyObject_CallOneArg(fold_fn, text);
}

/* folded(text) == target for an exact ASCII str, without building the folded text. */
static int
ascii_equals_folded(PyObject *text, PyObject *target)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (!PyUnicode_IS_ASCII(target) || PyUnicode_GET_LENGTH(target) != length) {
        return 0; /* the fold of ASCII text is ASCII text of the same length */
    }
    const Py_UCS1 *data = PyUnicode_1BYTE_DATA(text);
    const Py_UCS1 *want = PyUnicode_1BYTE_DATA(target);
    for (Py_ssize_t i = 0; i < length; i++) {
        if (lower_ascii(data[i]) != want[i]) {
            return 0;
        }
    }
    return 1;
}

/* The instant a str names (a new reference; None if it names none), NULL on error. */
static PyObject *
instant_of(PyObject *text)
{
    PyObject *found = PyDict_GetItemWithError(instant_memo, text);
    if (found != NULL) {
        return Py_NewRef(found);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyObject_CallOneArg(instant_fn, text);
}

static inline int
is_number(PyObject *value)
{
    return (PyLong_Check(value) || PyFloat_Check(value)) && !PyBool_Check(value);
}

static inline int
is_collection(PyObject *value)
{
    return PyList_Check(value) || PyTuple_Check(value) || PyAnySet_Check(value);
}

/* Python's `left <op> right` as a truth value (no identity shortcut: nan != nan). */
static int
compare(PyObject *left, PyObject *right, int op)
{
    PyObject *result = PyObject_RichCompare(left, right, op);
    if (result == NULL) {
        return -1;
    }
    int truth = result == Py_True ? 1 : result == Py_False ? 0 : PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* The comparison of a converted value with the node's target. */
static int
compare_converted(const Node *node, PyObject *converted)
{
    switch (node->cmp) {
    case C_IN:
        return PySet_Contains(node->target, converted);
    case C_CONTAINS:
        return PyUnicode_Contains(converted, node->target);
    case C_STARTS:
        return (int)PyUnicode_Tailmatch(converted, node->target, 0, PY_SSIZE_T_MAX, -1);
    case C_ENDS:
        return (int)PyUnicode_Tailmatch(converted, node->target, 0, PY_SSIZE_T_MAX, 1);
    case C_BETWEEN: {
        int low = compare(node->target, converted, Py_LE);
        if (low <= 0) {
            return low;
        }
        return compare(converted, node->high, Py_LE);
    }
    default:
        return compare(converted, node->target, node->cmp);
    }
}

/* The folded items of a list/tuple/set whose every item is a str (a new set), None for any
 * other value (it holds no option), NULL on error. */
static PyObject *
folded_options(PyObject *value)
{
    if (!is_collection(value)) {
        return Py_NewRef(Py_None);
    }
    PyObject *iterator = PyObject_GetIter(value);
    if (iterator == NULL) {
        return NULL;
    }
    PyObject *items = PySet_New(NULL);
    PyObject *item;
    while (items != NULL && items != Py_None && (item = PyIter_Next(iterator)) != NULL) {
        if (!PyUnicode_Check(item)) {
            Py_SETREF(items, Py_NewRef(Py_None)); /* one item that is not a str */
        }
        else {
            PyObject *folded = fold_text(item);
            if (folded == NULL || PySet_Add(items, folded) < 0) {
                Py_CLEAR(items);
            }
            Py_XDECREF(folded);
        }
        Py_DECREF(item);
    }
    Py_DECREF(iterator);
    if (items != NULL && PyErr_Occurred()) {
        Py_CLEAR(items);
    }
    return items;
}

/* Whether the set `have` holds any (all == 0) or every (all == 1) item of the target set; with
 * `flipped` (else NULL), `have` with the membership of the items of `flipped` toggled. */
static int
holds(PyObject *target, PyObject *have, PyObject *flipped, int all)
{
    PyObject *iterator = PyObject_GetIter(target);
    if (iterator == NULL) {
        return -1;
    }
    int truth = all; /* any: true at the first item held; all: false at the first missing */
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        int in = PySet_Contains(have, item);
        if (flipped != NULL && in >= 0) {
            int toggled = PySet_Contains(flipped, item);
            in = toggled < 0 ? -1 : in ^ toggled;
        }
        Py_DECREF(item);
        if (in != all) {
            truth = in;
            break;
        }
    }
    Py_DECREF(iterator);
    return truth >= 0 && PyErr_Occurred() ? -1 : truth;
}

/* Truth of callable(a, b). */
static int
call_truth(PyObject *callable, PyObject *a, PyObject *b)
{
    PyObject *args[2] = {a, b};
    PyObject *result = PyObject_Vectorcall(callable, args, 2, NULL);
    if (result == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* -- evaluation ---------------------------------------------------------------------------- */

static int
test_value(const Node *node, PyObject *value, Context *ctx)
{
    switch (node->conv) {
    case K_STR: {
        if (!PyUnicode_Check(value)) {
            return 0;
        }
        if (node->cmp == Py_EQ && PyUnicode_CheckExact(value) && PyUnicode_IS_ASCII(value)) {
            return ascii_equals_folded(value, node->target);
        }
        PyObject *folded = fold_text(value);
        if (folded == NULL) {
            return -1;
        }
        int truth = compare_converted(node, folded);
        Py_DECREF(folded);
        return truth;
    }
    case K_BOOL:
        return PyBool_Check(value) ? compare_converted(node, value) : 0;
    case K_NUM:
        return is_number(value) ? compare_converted(node, value) : 0;
    case K_DATE:
    case K_AGE: {
        if (!PyUnicode_Check(value)) {
            return 0;
        }
        PyObject *converted = instant_of(value); /* the instant, or None */
        if (converted != NULL && converted != Py_None && node->conv == K_AGE) {
            Py_SETREF(converted, PyNumber_Subtract(ctx->now, converted));
        }
        if (converted == NULL) {
            return -1;
        }
        int truth = converted == Py_None ? 0 : compare_converted(node, converted);
        Py_DECREF(converted);
        return truth;
    }
    case K_OPTIONS_ANY:
    case K_OPTIONS_ALL: {
        PyObject *items = folded_options(value);
        if (items == NULL) {
            return -1;
        }
        int truth = items == Py_None ? 0 : holds(node->target, items, NULL, node->conv == K_OPTIONS_ALL);
        Py_DECREF(items);
        return truth;
    }
    case K_GROUPS_ANY:
    case K_GROUPS_ALL:
        if (!PyAnySet_Check(value)) {
            return 0;
        }
        /* the view's groups are read here without building them (read_value's mapping) */
        return holds(node->target, value, node->source == S_GROUPS ? ctx->flipped : NULL,
                     node->conv == K_GROUPS_ALL);
    default:
        return call_truth(node->target, value, ctx->now);
    }
}

static int
eval_node(const Node *nodes, Py_ssize_t at, Context *ctx)
{
    const Node *node = &nodes[at];
    switch (node->kind) {
    case N_TRIGGER: {
        PyObject *value = read_value(node, ctx);
        if (value == NULL) {
            return -1;
        }
        int truth = test_value(node, value, ctx);
        Py_DECREF(value);
        return truth < 0 ? -1 : truth ^ node->negate;
    }
    case N_NOT: {
        int truth = eval_node(nodes, at + 1, ctx);
        return truth < 0 ? -1 : !truth;
    }
    default: {
        /* all: stop at the first false child; any: at the first true one */
        int stop = node->kind == N_ANY;
        Py_ssize_t end = at + node->size;
        for (Py_ssize_t child = at + 1; child < end; child += nodes[child].size) {
            int truth = eval_node(nodes, child, ctx);
            if (truth < 0 || truth == stop) {
                return truth;
            }
        }
        return !stop;
    }
    }
}

static PyObject *
program_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a program takes (member, now)");
        return NULL;
    }
    Context ctx = {args[0], args[1], {NULL, NULL, NULL, NULL}, NULL, NULL};
    int truth = eval_node(((Program *)self)->nodes, 0, &ctx);
    for (int i = 0; i < S_COUNT; i++) {
        Py_XDECREF(ctx.sources[i]);
    }
    if (truth < 0) {
        return NULL;
    }
    return Py_NewRef(truth ? Py_True : Py_False);
}

/* -- building ------------------------------------------------------------------------------ */

static void
program_dealloc(Program *self)
{
    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++) {
        Py_XDECREF(self->nodes[i].key);
        Py_XDECREF(self->nodes[i].target);
        Py_XDECREF(self->nodes[i].high);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
fill_node(Node *node, PyObject *spec, Py_ssize_t at, Py_ssize_t count)
{
    int kind, source, conv, cmp, negate;
    Py_ssize_t size;
    PyObject *key, *target, *high;
    if (!PyArg_ParseTuple(spec, "inOiiiiOO;a node is (kind, size, key, source, conv, cmp, negate, "
                                "target, high)",
                          &kind, &size, &key, &source, &conv, &cmp, &negate, &target, &high)) {
        return -1;
    }
    int bad = kind < N_ALL || kind > N_TRIGGER || size < 1 || at + size > count;
    if (!bad && kind == N_TRIGGER) {
        bad = size != 1 || source < 0 || source >= S_COUNT || conv < K_STR || conv > K_TEST ||
              cmp < Py_LT || cmp > C_LAST ||
              (cmp >= C_CONTAINS && (conv != K_STR || !PyUnicode_Check(target))) || (source != S_GROUPS && !PyUnicode_Check(key)) ||
              (cmp == C_IN && !PyAnySet_Check(target)) ||
              ((conv == K_OPTIONS_ANY || conv == K_OPTIONS_ALL || conv == K_GROUPS_ANY ||
                conv == K_GROUPS_ALL) &&
               !PyAnySet_Check(target)) ||
              (conv == K_STR && cmp == Py_EQ && !PyUnicode_CheckExact(target)) ||
              (conv == K_TEST && !PyCallable_Check(target));
    }
    if (!bad && kind == N_NOT) {
        bad = size < 2;
    }
    if (bad) {
        PyErr_Format(PyExc_ValueError, "malformed node %zd", at);
        return -1;
    }
    node->kind = (unsigned char)kind;
    node->source = (unsigned char)source;
    node->conv = (unsigned char)conv;
    node->cmp = (unsigned char)cmp;
    node->negate = negate != 0;
    node->size = size;
    node->key = key == Py_None ? NULL : Py_NewRef(key);
    node->target = target == Py_None && kind != N_TRIGGER ? NULL : Py_NewRef(target);
    node->high = high == Py_None && cmp != C_BETWEEN ? NULL : Py_NewRef(high);
    return 0;
}

static PyTypeObject ProgramType;

static PyObject *
program_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *specs;
    if (!PyArg_ParseTuple(args, "O!:Program", &PyTuple_Type, &specs)) {
        return NULL;
    }
    if (fold_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() the module before building programs");
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(specs);
    if (count < 1) {
        PyErr_SetString(PyExc_ValueError, "a program has at least one node");
        return NULL;
    }
    Program *self = PyObject_NewVar(Program, type, count);
    if (self == NULL) {
        return NULL;
    }
    memset(self->nodes, 0, sizeof(Node) * (size_t)count);
    self->vectorcall = program_vectorcall;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (fill_node(&self->nodes[i], PyTuple_GET_ITEM(specs, i), i, count) < 0) {
            Py_DECREF(self);
            return NULL;
        }
    }
    if (self->nodes[0].size != count) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_ValueError, "the root's size is not the number of nodes");
        return NULL;
    }
    return (PyObject *)self;
}

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "smartgroups.core._native.Program",
    .tp_doc = PyDoc_STR("Program(nodes): a lowered condition tree; program(member, now) -> bool"),
    .tp_basicsize = offsetof(Program, nodes),
    .tp_itemsize = sizeof(Node),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Program, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = program_new,
    .tp_dealloc = (destructor)program_dealloc,
};

/* -- the cascade --------------------------------------------------------------------------- */

/* A node is matching.Node: (rank, names, time_fields, predicate). */
enum { NODE_RANK = 0, NODE_NAMES = 1, NODE_TIME_FIELDS = 2, NODE_PREDICATE = 3, NODE_FIELDS = 4 };

typedef struct {
    Py_ssize_t rank;    /* -1 for a group that is not indexed */
    Py_ssize_t order;   /* when it was queued: groups of one rank are decided in that order */
    PyObject *group_id; /* owned */
    PyObject *node;     /* owned; NULL for a group that is not indexed */
} Queued;

/* The groups waiting to be decided: a binary min-heap on (rank, order). */
typedef struct {
    Queued *items;
    Py_ssize_t size, capacity, order;
} Queue;

static inline int
decided_before(const Queued *a, const Queued *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->order < b->order);
}

/* Queue a group with its node (borrowed; NULL if not indexed). */
static int
queue_push(Queue *queue, PyObject *group_id, PyObject *node)
{
    Py_ssize_t rank = -1;
    if (node != NULL) {
        if (!PyTuple_Check(node) || PyTuple_GET_SIZE(node) != NODE_FIELDS) {
            PyErr_SetString(PyExc_TypeError, "a node is (rank, names, time_fields, predicate)");
            return -1;
        }
        rank = PyLong_AsSsize_t(PyTuple_GET_ITEM(node, NODE_RANK));
        if (rank == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (queue->size == queue->capacity) {
        Py_ssize_t capacity = queue->capacity ? 2 * queue->capacity : 64;
        Queued *items = PyMem_Realloc(queue->items, (size_t)capacity * sizeof(Queued));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        queue->items = items;
        queue->capacity = capacity;
    }
    Queued item = {rank, queue->order++, Py_NewRef(group_id), Py_XNewRef(node)};
    Py_ssize_t at = queue->size++;
    while (at > 0 && decided_before(&item, &queue->items[(at - 1) / 2])) {
        queue->items[at] = queue->items[(at - 1) / 2];
        at = (at - 1) / 2;
    }
    queue->items[at] = item;
    return 0;
}

/* Take the group to decide next (the queue is not empty); the caller owns its references. */
static Queued
queue_pop(Queue *queue)
{
    Queued first = queue->items[0];
    Queued last = queue->items[--queue->size];
    Py_ssize_t at = 0;
    for (;;) {
        Py_ssize_t child = 2 * at + 1;
        if (child >= queue->size) {
            break;
        }
        if (child + 1 < queue->size && decided_before(&queue->items[child + 1], &queue->items[child])) {
            child++;
        }
        if (!decided_before(&queue->items[child], &last)) {
            break;
        }
        queue->items[at] = queue->items[child];
        at = child;
    }
    queue->items[at] = last;
    return first;
}

static void
queue_release(Queue *queue)
{
    for (Py_ssize_t i = 0; i < queue->size; i++) {
        Py_DECREF(queue->items[i].group_id);
        Py_XDECREF(queue->items[i].node);
    }
    PyMem_Free(queue->items);
}

/* What a cascade decides with: matching.cascade's arguments and its Shortcut's fields. */
typedef struct {
    PyObject *nodes, *dependents, *decide, *current;
    Context member;       /* the shortcut's member and now; member NULL without a shortcut */
    int eligible;
    PyObject *exempt;     /* NULL when empty */
    PyObject *timed;
    PyObject *queued;     /* every group queued so far (a set) */
    PyObject *flipped;    /* every group flipped so far (a set) */
    PyObject *groups_now; /* current ^ flipped, once built (stale while `stale`) */
    int stale;
} Cascade;

/* A program on the member as a group that sees flips does: the groups are `current` with the
 * flipped ones toggled (the sources the view reads first are handed to the cascade's context,
 * which owns them). */
static int
eval_seeing_flips(Cascade *run, Program *program)
{
    Context view = run->member;
    view.sources[S_GROUPS] = run->current;
    view.flipped = run->flipped;
    view.rebuilt = NULL;
    int truth = eval_node(program->nodes, 0, &view);
    for (int i = 0; i < S_GROUPS; i++) {
        if (run->member.sources[i] == NULL) {
            run->member.sources[i] = view.sources[i];
        }
    }
    Py_XDECREF(view.rebuilt);
    return truth;
}

/* The verdict of one queued group, as python_cascade reaches it. */
static int
verdict_of(Cascade *run, const Queued *item)
{
    PyObject *node = item->node;
    int sees_a_flip = 0;
    if (node != NULL && PySet_GET_SIZE(run->flipped) > 0) {
        PyObject *names = PyTuple_GET_ITEM(node, NODE_NAMES);
        sees_a_flip = PyObject_IsTrue(names);
        if (sees_a_flip > 0) {
            sees_a_flip = holds(names, run->flipped, NULL, 0);
        }
        if (sees_a_flip < 0) {
            return -1;
        }
    }
    PyObject *predicate = node != NULL ? PyTuple_GET_ITEM(node, NODE_PREDICATE) : Py_None;
    int covered = run->member.member != NULL && predicate != Py_None;
    if (covered && run->exempt != NULL) {
        int exempt = PySequence_Contains(run->exempt, item->group_id);
        if (exempt < 0) {
            return -1;
        }
        covered = !exempt;
    }
    int native = covered && Py_IS_TYPE(predicate, &ProgramType);
    if (sees_a_flip && !native) {
        if (run->stale) {
            Py_SETREF(run->groups_now, PyNumber_Xor(run->current, run->flipped));
            if (run->groups_now == NULL) {
                return -1;
            }
            run->stale = 0;
        }
        return call_truth(run->decide, item->group_id, run->groups_now);
    }
    if (!covered) {
        return call_truth(run->decide, item->group_id, run->current);
    }
    if (!run->eligible) {
        return 0;
    }
    int timed = PyObject_IsTrue(PyTuple_GET_ITEM(node, NODE_TIME_FIELDS));
    if (timed < 0 || (timed && PyList_Append(run->timed, item->group_id) < 0)) {
        return -1;
    }
    if (!native) {
        return call_truth(predicate, run->member.member, run->member.now);
    }
    if (sees_a_flip) {
        return eval_seeing_flips(run, (Program *)predicate);
    }
    return eval_node(((Program *)predicate)->nodes, 0, &run->member);
}

/* Queue the groups naming a group that flipped (those not queued yet). */
static int
queue_dependents(Cascade *run, Queue *queue, PyObject *group_id)
{
    PyObject *dependents = PyDict_GetItemWithError(run->dependents, group_id);
    if (dependents == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *iterator = PyObject_GetIter(dependents);
    if (iterator == NULL) {
        return -1;
    }
    PyObject *dependent;
    int status = 0;
    while (status == 0 && (dependent = PyIter_Next(iterator)) != NULL) {
        int queued = PySet_Contains(run->queued, dependent);
        if (queued < 0) {
            status = -1;
        }
        else if (!queued) {
            PyObject *node = PyDict_GetItemWithError(run->nodes, dependent);
            if (node == NULL) {
                if (!PyErr_Occurred()) {
                    PyErr_SetObject(PyExc_KeyError, dependent);
                }
                status = -1;
            }
            else if (PySet_Add(run->queued, dependent) < 0 || queue_push(queue, dependent, node) < 0) {
                status = -1;
            }
        }
        Py_DECREF(dependent);
    }
    Py_DECREF(iterator);
    return status < 0 || PyErr_Occurred() ? -1 : 0;
}

/* Decide the queued groups in (rank, order); append the flips. */
static int
run_cascade(Cascade *run, Queue *queue, PyObject *flips)
{
    while (queue->size > 0) {
        Queued item = queue_pop(queue);
        int status = verdict_of(run, &item);
        int verdict = status;
        if (status >= 0) {
            int member = PySet_Contains(run->current, item.group_id);
            status = member < 0 ? -1 : member == verdict ? 1 : 0; /* 1: no flip */
        }
        if (status == 0) {
            PyObject *flip = PyTuple_Pack(2, item.group_id, verdict ? Py_True : Py_False);
            status = flip == NULL || PySet_Add(run->flipped, item.group_id) < 0 ||
                             PyList_Append(flips, flip) < 0 ||
                             queue_dependents(run, queue, item.group_id) < 0
                         ? -1
                         : 0;
            Py_XDECREF(flip);
            run->stale = 1;
        }
        Py_DECREF(item.group_id);
        Py_XDECREF(item.node);
        if (status < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
cascade(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 && nargs != 10) {
        PyErr_SetString(PyExc_TypeError,
                        "cascade(nodes, dependents, start, decide, current"
                        "[, member, now, eligible, exempt, timed])");
        return NULL;
    }
    if (!PyDict_Check(args[0]) || !PyDict_Check(args[1]) || !PyAnySet_Check(args[4]) ||
        (nargs == 10 && !PyList_Check(args[9]))) {
        PyErr_SetString(PyExc_TypeError, "nodes and dependents are dicts, current a set, timed a list");
        return NULL;
    }
    Cascade run = {0};
    run.nodes = args[0];
    run.dependents = args[1];
    run.decide = args[3];
    run.current = args[4];
    if (nargs == 10) {
        run.member.member = args[5];
        run.member.now = args[6];
        run.eligible = PyObject_IsTrue(args[7]);
        Py_ssize_t exempt = PyObject_Length(args[8]);
        if (run.eligible < 0 || exempt < 0) {
            return NULL;
        }
        run.exempt = exempt > 0 ? args[8] : NULL;
        run.timed = args[9];
    }
    Queue queue = {NULL, 0, 0, 0};
    PyObject *flips = PyList_New(0);
    run.queued = PySet_New(args[2]);
    run.flipped = PySet_New(NULL);
    run.groups_now = Py_NewRef(run.current);
    int status = flips == NULL || run.queued == NULL || run.flipped == NULL ? -1 : 0;
    Py_ssize_t position = 0;
    PyObject *group_id;
    Py_hash_t hash;
    while (status == 0 && _PySet_NextEntry(run.queued, &position, &group_id, &hash)) {
        PyObject *node = PyDict_GetItemWithError(run.nodes, group_id);
        status = (node == NULL && PyErr_Occurred()) || queue_push(&queue, group_id, node) < 0 ? -1 : 0;
    }
    if (status == 0) {
        status = run_cascade(&run, &queue, flips);
    }
    queue_release(&queue);
    for (int i = 0; i < S_COUNT; i++) {
        Py_XDECREF(run.member.sources[i]);
    }
    Py_XDECREF(run.queued);
    Py_XDECREF(run.flipped);
    Py_DECREF(run.groups_now);
    if (status < 0) {
        Py_XDECREF(flips);
        return NULL;
    }
    return flips;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *fold, *instant, *memo;
    if (!PyArg_ParseTuple(args, "OOO!:configure", &fold, &instant, &PyDict_Type, &memo)) {
        return NULL;
    }
    Py_XSETREF(fold_fn, Py_NewRef(fold));
    Py_XSETREF(instant_fn, Py_NewRef(instant));
    Py_XSETREF(instant_memo, Py_NewRef(memo));
    Py_RETURN_NONE;
}

/* Kafka's default partitioner: (murmur2(key) & 0x7fffffff) % partitions, murmur2 with seed
 * 0x9747b28c as in the Java client (partitioning.py holds the Python reference). */
static PyObject *
partition(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "partition(key: bytes, partitions: int)");
        return NULL;
    }
    long partitions = PyLong_AsLong(args[1]);
    if (partitions == -1 && PyErr_Occurred())
        return NULL;
    if (partitions <= 0) {
        PyErr_SetString(PyExc_ValueError, "partitions must be positive");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t length = PyBytes_GET_SIZE(args[0]);
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t end = length - (length & 3);
    for (Py_ssize_t i = 0; i < end; i += 4) {
        uint32_t k = (uint32_t)data[i] | ((uint32_t)data[i + 1] << 8) |
                     ((uint32_t)data[i + 2] << 16) | ((uint32_t)data[i + 3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length & 3) {
    case 3:
        h ^= (uint32_t)data[end + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[end + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)data[end];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return PyLong_FromLong((long)((h & 0x7fffffffu) % (uint32_t)partitions));
}

static PyMethodDef module_methods[] = {
    {"partition", (PyCFunction)(void (*)(void))partition, METH_FASTCALL,
     PyDoc_STR("partition(key, partitions): partitioning.partition_for")},
    {"cascade", (PyCFunction)(void (*)(void))cascade, METH_FASTCALL,
     PyDoc_STR("cascade(nodes, dependents, start, decide, current[, member, now, eligible, "
               "exempt, timed]): matching.cascade (python_cascade is its reference)")},
    {"configure", configure, METH_VARARGS,
     PyDoc_STR("configure(fold, parse_instant, memo): the Python helpers programs call")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "smartgroups.core._native",
    .m_doc = PyDoc_STR("The native evaluator of condition trees and the cascade (see extension.py)."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    static const char *names[S_COUNT] = {"profile", "properties", "answers", "groups"};
    for (int i = 0; i < S_COUNT; i++) {
        source_names[i] = PyUnicode_InternFromString(names[i]);
        if (source_names[i] == NULL) {
            return NULL;
        }
    }
    get_name = PyUnicode_InternFromString("get");
    if (get_name == NULL || PyType_Ready(&ProgramType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Program", (PyObject *)&ProgramType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    /* LAYOUT: every enum the Python side writes into nodes, so it can check them at import
       (extension.check_layout); a mismatch would make programs answer wrongly, not fail. */
    static const struct {
        const char *name;
        int value;
    } layout[] = {
        {"N_ALL", N_ALL}, {"N_ANY", N_ANY}, {"N_NOT", N_NOT}, {"N_TRIGGER", N_TRIGGER},
        {"S_PROFILE", S_PROFILE}, {"S_PROPERTY", S_PROPERTY}, {"S_ANSWER", S_ANSWER},
        {"S_GROUPS", S_GROUPS}, {"K_STR", K_STR}, {"K_BOOL", K_BOOL}, {"K_NUM", K_NUM},
        {"K_DATE", K_DATE}, {"K_OPTIONS_ANY", K_OPTIONS_ANY}, {"K_GROUPS_ANY", K_GROUPS_ANY},
        {"K_GROUPS_ALL", K_GROUPS_ALL}, {"K_AGE", K_AGE}, {"K_OPTIONS_ALL", K_OPTIONS_ALL},
        {"K_TEST", K_TEST}, {"C_LT", Py_LT}, {"C_LE", Py_LE}, {"C_EQ", Py_EQ}, {"C_GT", Py_GT},
        {"C_GE", Py_GE}, {"C_BETWEEN", C_BETWEEN}, {"C_IN", C_IN}, {"C_CONTAINS", C_CONTAINS},
        {"C_STARTS", C_STARTS}, {"C_ENDS", C_ENDS}, {"PROGRAM_NODE_FIELDS", 9},
        {"NODE_RANK", NODE_RANK}, {"NODE_NAMES", NODE_NAMES},
        {"NODE_TIME_FIELDS", NODE_TIME_FIELDS}, {"NODE_PREDICATE", NODE_PREDICATE},
        {"NODE_FIELDS", NODE_FIELDS},
    };
    PyObject *table = PyDict_New();
    if (table == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
        PyObject *value = PyLong_FromLong(layout[i].value);
        if (value == NULL || PyDict_SetItemString(table, layout[i].name, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(table);
            Py_DECREF(module);
            return NULL;
        }
        Py_DECREF(value);
    }
    int added = PyModule_AddObjectRef(module, "LAYOUT", table);
    Py_DECREF(table);
    if (added < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
