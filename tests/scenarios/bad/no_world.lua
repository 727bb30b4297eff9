print("this scenario forgot to build a world")
