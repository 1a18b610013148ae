"""The templates of the methods of records (``gtdsl._records``), shipped compiled.

Generated, do not edit: ``python -c "import gtdsl._records as r; r.write_shipped_templates()"``.
"""


def eq_0():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return (() ==
                    ())
        return NotImplemented
    return __eq__


def hash_0():
    def __hash__(self):
        return hash(())
    return __hash__


def init_0_set():
    def __init__(self):
        pass
    return __init__


def init_0_set_post():
    def __init__(self):
        self.__post_init__()
    return __init__


def init_0_attr():
    def __init__(self):
        pass
    return __init__


def init_0_attr_post():
    def __init__(self):
        self.__post_init__()
    return __init__


def eq_1():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0,) ==
                    (other._r_f0,))
        return NotImplemented
    return __eq__


def hash_1():
    def __hash__(self):
        return hash((self._r_f0,))
    return __hash__


def init_1_set(_r_s0):
    def __init__(self, _r_a0):
        _r_s0(self, _r_a0)
    return __init__


def init_1_set_post(_r_s0):
    def __init__(self, _r_a0):
        _r_s0(self, _r_a0)
        self.__post_init__()
    return __init__


def init_1_attr():
    def __init__(self, _r_a0):
        self._r_f0 = _r_a0
    return __init__


def init_1_attr_post():
    def __init__(self, _r_a0):
        self._r_f0 = _r_a0
        self.__post_init__()
    return __init__


def eq_2():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1,) ==
                    (other._r_f0, other._r_f1,))
        return NotImplemented
    return __eq__


def hash_2():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1,))
    return __hash__


def init_2_set(_r_s0, _r_s1):
    def __init__(self, _r_a0, _r_a1):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
    return __init__


def init_2_set_post(_r_s0, _r_s1):
    def __init__(self, _r_a0, _r_a1):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        self.__post_init__()
    return __init__


def init_2_attr():
    def __init__(self, _r_a0, _r_a1):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
    return __init__


def init_2_attr_post():
    def __init__(self, _r_a0, _r_a1):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self.__post_init__()
    return __init__


def eq_3():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2,) ==
                    (other._r_f0, other._r_f1, other._r_f2,))
        return NotImplemented
    return __eq__


def hash_3():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2,))
    return __hash__


def init_3_set(_r_s0, _r_s1, _r_s2):
    def __init__(self, _r_a0, _r_a1, _r_a2):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
    return __init__


def init_3_set_post(_r_s0, _r_s1, _r_s2):
    def __init__(self, _r_a0, _r_a1, _r_a2):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        self.__post_init__()
    return __init__


def init_3_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
    return __init__


def init_3_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self.__post_init__()
    return __init__


def eq_4():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3,))
        return NotImplemented
    return __eq__


def hash_4():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3,))
    return __hash__


def init_4_set(_r_s0, _r_s1, _r_s2, _r_s3):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
    return __init__


def init_4_set_post(_r_s0, _r_s1, _r_s2, _r_s3):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        self.__post_init__()
    return __init__


def init_4_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
    return __init__


def init_4_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self.__post_init__()
    return __init__


def eq_5():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,))
        return NotImplemented
    return __eq__


def hash_5():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4,))
    return __hash__


def init_5_set(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
    return __init__


def init_5_set_post(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        self.__post_init__()
    return __init__


def init_5_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
    return __init__


def init_5_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self.__post_init__()
    return __init__


def eq_6():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,
                     other._r_f5,))
        return NotImplemented
    return __eq__


def hash_6():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,))
    return __hash__


def init_6_set(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
    return __init__


def init_6_set_post(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        self.__post_init__()
    return __init__


def init_6_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
    return __init__


def init_6_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self.__post_init__()
    return __init__


def eq_7():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,
                     other._r_f5, other._r_f6,))
        return NotImplemented
    return __eq__


def hash_7():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6,))
    return __hash__


def init_7_set(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
    return __init__


def init_7_set_post(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        self.__post_init__()
    return __init__


def init_7_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
    return __init__


def init_7_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self.__post_init__()
    return __init__


def eq_8():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,
                     other._r_f5, other._r_f6, other._r_f7,))
        return NotImplemented
    return __eq__


def hash_8():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7,))
    return __hash__


def init_8_set(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
    return __init__


def init_8_set_post(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        self.__post_init__()
    return __init__


def init_8_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
    return __init__


def init_8_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self.__post_init__()
    return __init__


def eq_9():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,
                     other._r_f5, other._r_f6, other._r_f7, other._r_f8,))
        return NotImplemented
    return __eq__


def hash_9():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8,))
    return __hash__


def init_9_set(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
    return __init__


def init_9_set_post(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
        self.__post_init__()
    return __init__


def init_9_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
    return __init__


def init_9_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
        self.__post_init__()
    return __init__


def eq_10():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8, self._r_f9,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,
                     other._r_f5, other._r_f6, other._r_f7, other._r_f8, other._r_f9,))
        return NotImplemented
    return __eq__


def hash_10():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8, self._r_f9,))
    return __hash__


def init_10_set(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8, _r_s9):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
        _r_s9(self, _r_a9)
    return __init__


def init_10_set_post(_r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8, _r_s9):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
        _r_s9(self, _r_a9)
        self.__post_init__()
    return __init__


def init_10_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
        self._r_f9 = _r_a9
    return __init__


def init_10_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
        self._r_f9 = _r_a9
        self.__post_init__()
    return __init__


def eq_11():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8, self._r_f9, self._r_f10,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,
                     other._r_f5, other._r_f6, other._r_f7, other._r_f8, other._r_f9,
                     other._r_f10,))
        return NotImplemented
    return __eq__


def hash_11():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8, self._r_f9, self._r_f10,))
    return __hash__


def init_11_set(
        _r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8, _r_s9, _r_s10):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
        _r_s9(self, _r_a9)
        _r_s10(self, _r_a10)
    return __init__


def init_11_set_post(
        _r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8, _r_s9, _r_s10):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
        _r_s9(self, _r_a9)
        _r_s10(self, _r_a10)
        self.__post_init__()
    return __init__


def init_11_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
        self._r_f9 = _r_a9
        self._r_f10 = _r_a10
    return __init__


def init_11_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
        self._r_f9 = _r_a9
        self._r_f10 = _r_a10
        self.__post_init__()
    return __init__


def eq_12():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return ((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8, self._r_f9, self._r_f10, self._r_f11,) ==
                    (other._r_f0, other._r_f1, other._r_f2, other._r_f3, other._r_f4,
                     other._r_f5, other._r_f6, other._r_f7, other._r_f8, other._r_f9,
                     other._r_f10, other._r_f11,))
        return NotImplemented
    return __eq__


def hash_12():
    def __hash__(self):
        return hash((self._r_f0, self._r_f1, self._r_f2, self._r_f3, self._r_f4, self._r_f5,
                     self._r_f6, self._r_f7, self._r_f8, self._r_f9, self._r_f10, self._r_f11,))
    return __hash__


def init_12_set(
        _r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8, _r_s9, _r_s10, _r_s11):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10, _r_a11):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
        _r_s9(self, _r_a9)
        _r_s10(self, _r_a10)
        _r_s11(self, _r_a11)
    return __init__


def init_12_set_post(
        _r_s0, _r_s1, _r_s2, _r_s3, _r_s4, _r_s5, _r_s6, _r_s7, _r_s8, _r_s9, _r_s10, _r_s11):
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10, _r_a11):
        _r_s0(self, _r_a0)
        _r_s1(self, _r_a1)
        _r_s2(self, _r_a2)
        _r_s3(self, _r_a3)
        _r_s4(self, _r_a4)
        _r_s5(self, _r_a5)
        _r_s6(self, _r_a6)
        _r_s7(self, _r_a7)
        _r_s8(self, _r_a8)
        _r_s9(self, _r_a9)
        _r_s10(self, _r_a10)
        _r_s11(self, _r_a11)
        self.__post_init__()
    return __init__


def init_12_attr():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10, _r_a11):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
        self._r_f9 = _r_a9
        self._r_f10 = _r_a10
        self._r_f11 = _r_a11
    return __init__


def init_12_attr_post():
    def __init__(self, _r_a0, _r_a1, _r_a2, _r_a3, _r_a4, _r_a5, _r_a6, _r_a7, _r_a8, _r_a9,
                 _r_a10, _r_a11):
        self._r_f0 = _r_a0
        self._r_f1 = _r_a1
        self._r_f2 = _r_a2
        self._r_f3 = _r_a3
        self._r_f4 = _r_a4
        self._r_f5 = _r_a5
        self._r_f6 = _r_a6
        self._r_f7 = _r_a7
        self._r_f8 = _r_a8
        self._r_f9 = _r_a9
        self._r_f10 = _r_a10
        self._r_f11 = _r_a11
        self.__post_init__()
    return __init__
