// SmallQueue<T>: a FIFO (ring buffer) that owns no heap memory while it is empty.
//
// libstdc++'s std::deque allocates a 512-byte node and its map on construction, even when it
// never holds an element; a session keeps several queues that are empty nearly all the time
// (outbound messages, events, bytes for the target), so an idle session paid for all of them.
// SmallQueue allocates on the first push, grows by doubling, and frees its storage as soon as
// it is empty again: an idle queue is four words.
//
// The subset of the std::deque interface the library uses: push_back / emplace_back, front,
// back, pop_front, pop_back, operator[] (0 = front), size, empty, clear, iteration front to
// back. Unlike std::deque, growing moves the elements: a reference to an element does not survive
// push_back/emplace_back (memory an element owns on the heap, e.g. a vector's buffer, stays where
// it is, so a write in flight from the front element's buffer is unaffected). Invariants: size_ <=
// cap_; cap_ is 0 or a power of two; storage_ is null iff cap_ == 0; elements live at
// storage_[(head_ + i) & (cap_ - 1)] for i in [0, size_).
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <utility>

namespace mana::core {

template <class T>
class SmallQueue {
 public:
  SmallQueue() noexcept = default;
  ~SmallQueue() { release(); }
  SmallQueue(const SmallQueue& o) : SmallQueue() {
    for (const T& v : o)
      push_back(v);
  }
  SmallQueue& operator=(const SmallQueue& o) {
    if (this != &o) {
      SmallQueue copy(o);
      swap(copy);
    }
    return *this;
  }
  SmallQueue(SmallQueue&& o) noexcept
      : storage_(std::exchange(o.storage_, nullptr)),
        cap_(std::exchange(o.cap_, 0)),
        head_(std::exchange(o.head_, 0)),
        size_(std::exchange(o.size_, 0)) {}
  SmallQueue& operator=(SmallQueue&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  void swap(SmallQueue& o) noexcept {
    std::swap(storage_, o.storage_);
    std::swap(cap_, o.cap_);
    std::swap(head_, o.head_);
    std::swap(size_, o.size_);
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Elements the current storage holds without growing (0 while empty).
  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }

  T& front() noexcept { return *slot(0); }
  const T& front() const noexcept { return *slot(0); }
  T& back() noexcept { return *slot(size_ - 1); }
  const T& back() const noexcept { return *slot(size_ - 1); }
  T& operator[](std::size_t i) noexcept { return *slot(i); }
  const T& operator[](std::size_t i) const noexcept { return *slot(i); }

  void push_back(const T& v) { emplace_back(v); }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == cap_) return grow_emplace_back(std::forward<Args>(args)...);
    T* p = ::new (static_cast<void*>(slot(size_))) T(std::forward<Args>(args)...);
    ++size_;
    return *p;
  }

  // Precondition: !empty(). The storage is freed when the queue becomes empty.
  void pop_front() noexcept {
    std::destroy_at(slot(0));
    head_ = (head_ + 1) & (cap_ - 1);
    if (--size_ == 0) release();
  }
  void pop_back() noexcept {
    std::destroy_at(slot(size_ - 1));
    if (--size_ == 0) release();
  }
  void clear() noexcept { release(); }

  template <class Q, class V>
  class Iter {
   public:
    // NOLINTBEGIN(readability-identifier-naming): the names std::iterator_traits looks for
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = V*;
    using reference = V&;
    // NOLINTEND(readability-identifier-naming)
    Iter() noexcept = default;
    Iter(Q* q, std::size_t i) noexcept : q_(q), i_(i) {}
    reference operator*() const noexcept { return (*q_)[i_]; }
    pointer operator->() const noexcept { return &(*q_)[i_]; }
    Iter& operator++() noexcept {
      ++i_;
      return *this;
    }
    Iter operator++(int) noexcept {
      Iter t = *this;
      ++i_;
      return t;
    }
    friend bool operator==(const Iter& a, const Iter& b) noexcept { return a.i_ == b.i_; }
    friend bool operator!=(const Iter& a, const Iter& b) noexcept { return a.i_ != b.i_; }

   private:
    Q* q_ = nullptr;
    std::size_t i_ = 0;
  };
  using Iterator = Iter<SmallQueue, T>;
  using ConstIterator = Iter<const SmallQueue, const T>;
  Iterator begin() noexcept { return {this, 0}; }
  Iterator end() noexcept { return {this, size_}; }
  ConstIterator begin() const noexcept { return {this, 0}; }
  ConstIterator end() const noexcept { return {this, size_}; }

 private:
  static constexpr std::size_t first_capacity = 4;

  T* slot(std::size_t i) const noexcept { return storage_ + ((head_ + i) & (cap_ - 1)); }

  // Moves the elements into storage twice as large. The new element is constructed first, so
  // `args` may refer to an element of this queue (as with push_back(q.front())).
  template <class... Args>
  T& grow_emplace_back(Args&&... args) {
    const std::size_t cap = cap_ == 0 ? first_capacity : 2 * cap_;
    // Undoes a half-built growth if a constructor throws (the core is also built with
    // -fno-exceptions, so no try/catch): the queue is left as it was.
    struct Undo {
      T* fresh;
      std::size_t cap;
      T* added = nullptr;
      std::size_t moved = 0;
      bool done = false;
      Undo(T* f, std::size_t c) noexcept : fresh(f), cap(c) {}
      Undo(const Undo&) = delete;
      Undo(Undo&&) = delete;
      Undo& operator=(Undo&&) = delete;
      Undo& operator=(const Undo&) = delete;
      ~Undo() {
        if (done) return;
        std::destroy_n(fresh, moved);
        if (added != nullptr) std::destroy_at(added);
        std::allocator<T>().deallocate(fresh, cap);
      }
    } undo(std::allocator<T>().allocate(cap), cap);
    undo.added = ::new (static_cast<void*>(undo.fresh + size_)) T(std::forward<Args>(args)...);
    for (; undo.moved < size_; ++undo.moved)
      ::new (static_cast<void*>(undo.fresh + undo.moved))
          T(std::move_if_noexcept(*slot(undo.moved)));
    undo.done = true;
    const std::size_t n = size_ + 1;
    release();  // destroys the moved-from elements, frees the old storage, head_ = 0
    storage_ = undo.fresh;
    cap_ = cap;
    size_ = n;
    return *undo.added;
  }

  void release() noexcept {
    for (std::size_t i = 0; i < size_; ++i)
      std::destroy_at(slot(i));
    if (storage_ != nullptr) std::allocator<T>().deallocate(storage_, cap_);
    storage_ = nullptr;
    cap_ = 0;
    head_ = 0;
    size_ = 0;
  }

  T* storage_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace mana::core
