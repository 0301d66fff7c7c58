from mqeval.benchmarks.understanding.evaluate import main

if __name__ == "__main__":
    main()
