import sys


def main():
    data = sys.stdin.buffer.read().split()
    n, k = int(data[0]), int(data[1])
    a = data[2:2 + n]
    count = {}
    distinct = 0
    left = 0
    total = 0
    for right in range(n):
        x = a[right]
        c = count.get(x, 0)
        if c == 0:
            distinct += 1
        count[x] = c + 1
        while distinct > k:
            y = a[left]
            count[y] -= 1
            if count[y] == 0:
                distinct -= 1
            left += 1
        total += right - left + 1
    print(total)


main()
