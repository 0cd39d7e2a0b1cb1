# The storage half of Cache (cache.pyx): the slot arrays, the key -> slot table,
# the lock and the eviction loop. cache.pyx builds the mapping API on it; the
# methods here run with the lock held unless they say otherwise.

from cpython.exc cimport PyErr_Occurred
from cpython.list cimport PyList_GET_ITEM, PyList_SET_ITEM
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.stdint cimport int32_t, int64_t

from memstrata._native.order cimport EvictionOrder


cdef extern from *:
    """
    #include <sched.h>
    /* A test-and-set lock. Uncontended, acquire + release is two atomic
       instructions; a thread that finds it taken gives up the GIL and yields
       until it is free, so a holder that needs the GIL (a key's __eq__, a
       value's __del__) can always finish its critical section. */
    static inline int ms_try_lock(int *flag) {
        return __atomic_exchange_n(flag, 1, __ATOMIC_ACQUIRE) == 0;
    }
    static inline void ms_unlock(int *flag) {
        __atomic_store_n(flag, 0, __ATOMIC_RELEASE);
    }
    static inline void ms_yield(void) { sched_yield(); }
    """
    bint ms_try_lock(int* flag) noexcept nogil
    void ms_unlock(int* flag) noexcept nogil
    void ms_yield() noexcept nogil


cdef extern from "Python.h":
    # without Cython's error check: _find tells a miss (NULL, no exception) from an error
    PyObject* _dict_get "PyDict_GetItemWithError"(object mp, object key)
    Py_ssize_t _slot_number "PyLong_AsSsize_t"(PyObject* slot) noexcept


cdef inline void _put(list items, Py_ssize_t i, object value) noexcept:
    # items[i] = value for an i in range, without the generic item assignment; the
    # caller holds a reference to the old item when it matters (no __del__ under the lock)
    cdef PyObject* old = PyList_GET_ITEM(items, i)
    Py_INCREF(value)
    PyList_SET_ITEM(items, i, value)
    Py_XDECREF(old)


# called by _find with the exception of a failed key lookup set (defined in _cache_slots.pyx)
cdef Py_ssize_t _lookup_failed(object key) except -2


cdef class CacheSlots:
    cdef dict _slots                # key -> slot
    cdef list _keys                 # slot -> key
    cdef list _values               # slot -> value
    cdef EvictionOrder _order
    cdef Py_ssize_t _cap            # slots allocated in the arrays below (and _keys, _values)
    cdef Py_ssize_t _n_used         # slots handed out so far: the next fresh slot
    cdef int32_t* _free             # slots given back, reused last-in first-out
    cdef Py_ssize_t _n_free
    cdef int64_t* _weights          # slot -> weight (with a weigher)
    cdef double* _atime             # slot -> last access time (with a clock)
    cdef object _clock
    cdef readonly Py_ssize_t maxsize
    cdef int64_t _max_bytes         # -1: unbounded
    cdef int64_t _bytes
    cdef object _weigher
    cdef object _on_evict
    cdef readonly str policy
    cdef int64_t _hits
    cdef int64_t _misses
    cdef int64_t _evictions
    cdef bint _thread_safe
    cdef int _lock                  # 0 free, 1 held (see ms_try_lock)

    cdef int _configure(self, maxsize, policy, max_bytes, weigher, on_evict, clock, thread_safe) except -1
    cdef int _grow(self, Py_ssize_t needed) except -1
    cdef Py_ssize_t _acquire_slot(self, object key) except -1
    cdef object _drop(self, Py_ssize_t slot)
    cdef int _forget(self, Py_ssize_t slot) except -1
    cdef bint _shrink(self, int64_t incoming, list evicted) except -1
    cdef int64_t _weigh(self, object value) except -1
    cdef _notify(self, list evicted)

    cdef inline void _acquire(self) noexcept:
        if self._thread_safe and not ms_try_lock(&self._lock):
            with nogil:
                while not ms_try_lock(&self._lock):
                    ms_yield()

    cdef inline void _release(self) noexcept:
        if self._thread_safe:
            ms_unlock(&self._lock)

    cdef inline Py_ssize_t _find(self, object key) except -2:
        # key's slot, or -1; no try block on this path (Cython's costs an exception
        # state save per call), the rare error goes to _lookup_failed
        cdef PyObject* p = _dict_get(self._slots, key)
        if p != NULL:
            return _slot_number(p)      # a slot number: a small non-negative int
        if PyErr_Occurred() == NULL:
            return -1
        return _lookup_failed(key)

    cdef inline bint _over(self, int64_t incoming) noexcept:
        # would one more entry of weight `incoming` overflow? (incoming < 0: no new entry)
        return (incoming >= 0 and self._n_free == 0 and self._n_used == self.maxsize) or (
            self._max_bytes >= 0 and self._bytes + (incoming if incoming > 0 else 0) > self._max_bytes)
